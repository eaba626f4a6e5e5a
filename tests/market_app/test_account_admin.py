"""The admin edits an account's commission schedule and risk limits, and nothing else of it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from market_app import risk, selectors, services
from market_app.fees import CommissionSchedule
from market_app.models import Account
from tests.support.factories import make_user

pytestmark = [pytest.mark.django_db]


def test_an_admin_sets_an_accounts_commission_schedule_and_cannot_move_its_cash() -> None:
    trader = make_user()
    account = services.account_for(trader.pk)
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-password-1")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/market_app/account/{account.pk}/change/")
    response = client.post(
        f"/admin/market_app/account/{account.pk}/change/",
        {"commission_per_share": "0.005", "commission_minimum": "1", "commission_bps": "", "cash": "999999999"},
    )

    assert page.status_code == 200 and b"commission_per_share" in page.content
    assert response.status_code == 302, response.content[:2000]
    account = Account.objects.get(pk=account.pk)
    assert account.cash == Decimal(100_000)  # read-only in the admin
    assert services.commission_schedule_of(account) == CommissionSchedule(
        per_share=Decimal("0.005"), minimum=Decimal(1), bps=Decimal(0)
    )


def test_an_admin_sets_an_accounts_risk_limits_and_refuses_one_below_its_minimum() -> None:
    account = services.account_for(make_user().pk)
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-password-1")
    client = Client()
    client.force_login(admin)
    url = f"/admin/market_app/account/{account.pk}/change/"
    limits = {"max_order_value": "25000", "max_position_value": "", "max_open_orders": "10", "max_leverage": "1.5"}

    saved = client.post(url, limits)
    refused = client.post(url, limits | {"max_open_orders": "0"})

    assert saved.status_code == 302, saved.content[:2000]
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert selectors.risk_limits_of(Account.objects.get(pk=account.pk)) == risk.Limits(
        max_order_value=Decimal(25_000), max_open_orders=10, max_leverage=Decimal("1.5")
    )
