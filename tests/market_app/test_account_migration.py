"""Migrations 0014-0016: every user's orders, fills and positions move into their one account, made their
default and current one ("Main"); a user with trading data and no account row gets one."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("market_app", "0013_account_loss_day_of_own_markets")
AFTER = ("market_app", "0016_accounts_constraints")


def migrate(target: tuple[str, str] | None) -> Any:
    """Migrate the app to `target` (None: its latest) and return the models as they were there."""
    executor = MigrationExecutor(connection)
    targets = (
        [target]
        if target is not None
        else [key for key in executor.loader.graph.leaf_nodes() if key[0] == "market_app"]
    )
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def trade(apps: Any, user: Any, instrument: Any) -> None:
    """An order of the user, its fill and the position it made, as the code before 0014 wrote them."""
    order = apps.get_model("market_app", "Order").objects.create(
        id=uuid.uuid4(), user=user, instrument=instrument, side="buy", order_type="market", quantity=Decimal(3)
    )
    apps.get_model("market_app", "Fill").objects.create(
        id=uuid.uuid4(),
        order=order,
        user=user,
        instrument=instrument,
        side="buy",
        quantity=Decimal(3),
        price=Decimal(10),
        tick_seq=1,
    )
    apps.get_model("market_app", "Position").objects.create(user=user, instrument=instrument, quantity=Decimal(3))


def test_existing_trading_data_moves_into_each_users_default_account() -> None:
    old = migrate(BEFORE)
    try:
        User = old.get_model("auth", "User")
        instrument = old.get_model("market_app", "Instrument").objects.create(
            symbol="MIGR", name="Migrated", tick_size=Decimal("0.01"), start_price=Decimal(10)
        )
        with_account, without_account = User.objects.create(username="had"), User.objects.create(username="hadnt")
        old.get_model("market_app", "Account").objects.create(
            user=with_account, cash=Decimal(70), starting_cash=Decimal(100)
        )
        trade(old, with_account, instrument)
        trade(old, without_account, instrument)
    finally:
        new = migrate(AFTER)
        migrate(None)  # the later migrations too, for the tests after this one
    accounts = {a.user.username: a for a in new.get_model("market_app", "Account").objects.select_related("user")}
    assert set(accounts) == {"had", "hadnt"}
    for account in accounts.values():
        assert (account.name, account.is_default, account.is_current, account.closed_at) == ("Main", True, True, None)
        for name in ("Order", "Fill", "Position"):
            rows = new.get_model("market_app", name).objects.filter(user=account.user)
            assert [row.account_id for row in rows] == [account.pk]
    assert accounts["had"].cash == Decimal(70)  # kept as it was
    assert accounts["hadnt"].cash == accounts["hadnt"].starting_cash > 0
