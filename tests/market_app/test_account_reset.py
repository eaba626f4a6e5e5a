"""Resetting a paper account (market_app.services.account_reset): preconditions, effects, REST and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from market_app import services
from market_app.accounting import FillIntent
from market_app.errors import AccountCode
from market_app.models import Account, AccountReset, EquitySample, Fill, Order, OrderStatus, Position
from sessions_app.realtime.errors import ProtocolError
from simulator_app.models import Simulator, SimulatorStatus
from tests.market_app.test_account_journal import body_json, client_of, csv_rows, scenario
from tests.market_app.test_trading_services import Trader, apply, place, set_prices, trader

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal


def stop(who: Trader) -> None:
    Simulator.objects.filter(pk=who.simulator_id).update(status=SimulatorStatus.STOPPED)


def holding_with_an_open_order() -> Trader:
    """10 AAPL bought at 100 (cash 99,000), AAPL at 150, and an open limit sell."""
    who = trader()
    set_prices({"AAPL": "100"})
    order = place(who.user_id, quantity=10)
    assert apply(who, FillIntent(order.id, D(10), D(100), 1)) is not None
    place(who.user_id, side="sell", orderType="limit", limitPrice=500.0, quantity=3)
    set_prices({"AAPL": "150"}, seq=2)
    return who


@pytest.mark.parametrize("status", [SimulatorStatus.STARTING, SimulatorStatus.RUNNING, SimulatorStatus.STOPPING])
def test_a_reset_is_refused_while_the_simulator_is_live(status: str) -> None:
    who = holding_with_an_open_order()
    Simulator.objects.filter(pk=who.simulator_id).update(status=status)
    with pytest.raises(ProtocolError) as error:
        services.account_reset(user_id=who.user_id)
    assert error.value.code == AccountCode.ACCOUNT_IN_USE
    assert Account.objects.get(user_id=who.user_id).cash == D(99_000)
    assert not AccountReset.objects.exists() and Position.objects.filter(quantity=10).exists()


def test_a_reset_restores_the_cash_cancels_open_orders_clears_positions_and_keeps_history() -> None:
    who = holding_with_an_open_order()
    stop(who)
    Account.objects.filter(user_id=who.user_id).update(fees_paid=D(3))
    reset = services.account_reset(user_id=who.user_id)
    account = Account.objects.get(user_id=who.user_id)
    assert (account.cash, account.fees_paid) == (D(100_000), 0)
    assert not Position.objects.filter(user_id=who.user_id).exists()
    sell = Order.objects.get(user_id=who.user_id, side="sell")
    assert (sell.status, sell.reason) == (OrderStatus.CANCELED, services.RESET_REASON)
    assert (
        Order.objects.filter(user_id=who.user_id).count() == 2 and Fill.objects.filter(user_id=who.user_id).count() == 1
    )
    assert (reset.cash_before, reset.positions_value_before, reset.equity_before) == (D(99_000), D(1_500), D(100_500))
    assert (reset.orders_canceled, reset.by_operator, reset.starting_cash) == (1, False, D(100_000))
    assert reset.positions_before == {
        "AAPL": {"quantity": "10.00000000", "averagePrice": "100.00000000", "realizedPnl": "0E-8"}
    }
    (sample,) = EquitySample.objects.filter(account__user_id=who.user_id)
    assert (sample.at, sample.equity, sample.tick_seq) == (reset.at, D(100_000), 2)


def test_a_reset_sends_the_users_connections_a_fresh_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[object] = []
    monkeypatch.setattr(services, "push", lambda **kwargs: pushed.append(kwargs["message"]()))
    who = holding_with_an_open_order()
    stop(who)
    pushed.clear()
    services.account_reset(user_id=who.user_id)
    (snapshot,) = pushed
    assert snapshot.account.cash == 100_000 and snapshot.userPositions == {}  # type: ignore[attr-defined]


def test_the_reset_endpoint_answers_the_reset_and_lists_it_then_the_epochs_split() -> None:
    who = scenario()
    client = client_of(who.user_id)
    refused = client.post("/api/market/account/reset/")
    assert refused.status_code == 409 and refused.json()["code"] == "account_in_use"
    stop(who)
    response = client.post("/api/market/account/reset/")
    assert response.status_code == 200
    reset = response.json()
    # Cash 100,000 - 1,000 + 440 + 570 - 1,000 + 950 - 200 (the fees stay in their column here); 2 AAPL at 120.
    assert (reset["epoch"], reset["cashBefore"], reset["ordersCanceled"], reset["positionsCleared"]) == (
        1,
        99_760,
        0,
        2,
    )
    assert reset["equityBefore"] == 99_760 + 2 * 120 and reset["byOperator"] is False
    assert client.get("/api/market/account/resets/").json() == [reset]
    # The default window is the new epoch; from=0 is the whole history, with each row's epoch.
    assert body_json(client.get("/api/market/journal/fills/")) == []
    rows = csv_rows(client.get("/api/market/journal/fills/?format=csv&from=0"))
    assert {r["epoch"] for r in rows} == {"0"} and len(rows) == 6
    # Only a `to`: the window is the epoch `to` falls in, here the one before the reset.
    assert len(body_json(client.get(f"/api/market/journal/fills/?to={reset['at']}"))) == 6  # type: ignore[arg-type]
    current = body_json(client.get("/api/market/journal/performance/"))
    assert current["epoch"] == 1 and current["start"] == reset["at"] and current["roundTrips"] == 0  # type: ignore[index]


def test_an_operator_resets_accounts_in_the_admin_except_one_whose_simulator_runs() -> None:
    stopped, running = holding_with_an_open_order(), holding_with_an_open_order()
    stop(stopped)
    admin = get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password")
    client = Client()
    client.force_login(admin)
    accounts = Account.objects.filter(user_id__in=[stopped.user_id, running.user_id])
    response = client.post(
        "/admin/market_app/account/",
        {"action": "reset_accounts", "_selected_action": [str(a.pk) for a in accounts]},
        follow=True,
    )
    text = response.content.decode()
    assert "1 account(s) reset" in text and "Not reset" in text and "account_in_use" not in text
    assert Account.objects.get(user_id=stopped.user_id).cash == D(100_000)
    assert Account.objects.get(user_id=running.user_id).cash == D(99_000)
    assert AccountReset.objects.get().by_operator is True


def test_the_admin_exports_orders_and_fills_and_shows_the_figures() -> None:
    who = scenario()
    admin = get_user_model().objects.create_superuser("operator", "op@example.com", "operator-password")
    client = Client()
    client.force_login(admin)
    account = Account.objects.get(user_id=who.user_id)
    response = client.post(
        "/admin/market_app/fill/", {"action": "export_csv", "_selected_action": [str(f.pk) for f in Fill.objects.all()]}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert (
        len(rows) == 6
        and list(rows[0])[:3] == ["user", "account", "fill_id"]
        and rows[0]["account"] == "Main"
        and rows[0]["price"] == "100"
    )
    response = client.post(
        "/admin/market_app/account/", {"action": "export_orders", "_selected_action": [str(account.pk)]}
    )
    assert len(csv_rows(response)) == 6
    page = client.get(f"/admin/market_app/account/{account.pk}/change/").content.decode()
    assert "realized_pnl" in page and "<td>-46</td>" in page and "<td>0.5</td>" in page and "<td>1500</td>" in page
