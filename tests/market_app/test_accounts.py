"""Several accounts per user (market_app.accounts): each its own cash, positions, orders and history;
the one a simulator trades chosen as it starts; opened, changed and closed by the rules, through the
services and REST."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from market_app import accounts, journal, selectors, services
from market_app.accounting import FillIntent
from market_app.errors import AccountCode
from market_app.messages import AccountOpening, AccountSettings, OrderTicket
from market_app.models import Account, EquitySample, Fill, Order, OrderStatus, Position
from market_app.snapshots import exchange_data_status
from sessions_app.models import TradingSession
from sessions_app.realtime.errors import ProtocolError
from simulator_app import services as simulator_services
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator
from tests.market_app.test_account_journal import body_json
from tests.market_app.test_trading_services import Trader, apply, place, set_prices
from tests.support.factories import issue_token, make_session, make_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal


def start(session: TradingSession, account_id: int | None = None, profile: str | None = None) -> Trader:
    """The user's simulator started on an account (None: the default one) and running on a new worker."""
    worker_id = make_worker()
    simulator, _ = accounts.simulator_start_on_account(
        user_id=session.user_id, session_id=session.id, account_id=account_id, profile=profile, choice=None
    )
    claim = simulator_services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    assert claim is not None
    assert simulator_services.simulator_mark_running(
        simulator_id=simulator.id, worker_id=worker_id, epoch=claim.epoch, reason="up"
    )
    return Trader(session.user_id, simulator.id, worker_id, claim.epoch)


def stop(who: Trader) -> None:
    """As its worker stops it: the open orders end with it."""
    assert simulator_services.simulator_finish_stop(
        simulator_id=who.simulator_id, worker_id=who.worker_id, epoch=who.epoch, state={}, reason="done"
    )


def open_account(user_id: int, name: str, **fields: Any) -> Account:
    return accounts.account_open(user_id=user_id, opening=AccountOpening(name=name, **fields))


def refused(code: StrEnum, call: Any, **arguments: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as error:
        call(**arguments)
    assert error.value.code == code
    return error.value


def buy_and_fill(who: Trader, quantity: int, price: str, tick_seq: int) -> Order:
    order = place(who.user_id, quantity=quantity)
    assert apply(who, FillIntent(order.id, D(quantity), D(price), tick_seq)) is not None
    return order


# --- Trading in one account leaves the others alone ---------------------------------------------------


def test_a_users_first_account_is_their_default_and_current_one() -> None:
    session = make_session()
    account = services.account_for(session.user_id)
    assert (account.name, account.is_default, account.is_current) == ("Main", True, True)
    assert account.cash == account.starting_cash == D(100_000)


def test_a_simulator_started_on_another_account_trades_it_and_leaves_the_default_alone() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    main = services.account_for(session.user_id)
    swing = open_account(session.user_id, "Swing", startingCash=20_000.0)
    assert not swing.is_current and not swing.is_default

    who = start(session, swing.pk)
    order = buy_and_fill(who, 10, "100", 1)

    swing.refresh_from_db()
    main.refresh_from_db()
    assert (swing.is_current, main.is_current) == (True, False)
    assert swing.cash == D(19_000) and main.cash == D(100_000)
    assert Order.objects.get(pk=order.pk).account_id == swing.pk
    assert list(Fill.objects.values_list("account_id", flat=True)) == [swing.pk]
    assert list(Position.objects.values_list("account_id", "quantity")) == [(swing.pk, D(10))]
    snapshot = exchange_data_status(user_id=session.user_id, reason="request")
    assert (snapshot.account.accountId, snapshot.account.name, snapshot.account.cash) == (swing.pk, "Swing", 19_000)
    assert list(snapshot.userPositions) == ["AAPL"] and list(snapshot.userOrders) == [str(order.id)]


def test_each_account_keeps_its_own_positions_orders_and_history() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    main_trader = start(session)
    main_order = buy_and_fill(main_trader, 5, "100", 1)
    stop(main_trader)
    swing = open_account(session.user_id, "Swing")
    swing_trader = start(session, swing.pk)
    swing_order = buy_and_fill(swing_trader, 7, "100", 2)

    main = Account.objects.get(user_id=session.user_id, name="Main")
    assert [p.quantity for p in selectors.positions_of_account(main.pk)] == [D(5)]
    assert [p.quantity for p in selectors.positions_of_account(swing.pk)] == [D(7)]
    window = journal.default_window(account_id=main.pk, start=None, end=None)
    assert [o.id for o in journal.journal_orders_page(account_id=main.pk, window=window)] == [main_order.id]
    window = journal.default_window(account_id=swing.pk, start=None, end=None)
    assert [o.id for o in journal.journal_orders_page(account_id=swing.pk, window=window)] == [swing_order.id]
    snapshot = exchange_data_status(user_id=session.user_id, reason="request")
    assert list(snapshot.userOrders) == [str(swing_order.id)]  # the current account's, not the other's


def test_a_start_without_an_account_trades_the_default_one_again() -> None:
    session = make_session()
    swing = open_account(session.user_id, "Swing")
    stop(start(session, swing.pk))
    start(session)
    assert Account.objects.get(user_id=session.user_id, is_current=True).name == "Main"


def test_a_start_refused_because_a_simulator_is_live_changes_no_account() -> None:
    session = make_session()
    swing = open_account(session.user_id, "Swing")
    start(session)
    refused(
        SimulatorCode.SIMULATOR_ALREADY_RUNNING,
        accounts.simulator_start_on_account,
        user_id=session.user_id,
        session_id=session.id,
        account_id=swing.pk,
        profile=None,
        choice=None,
    )
    swing.refresh_from_db()
    assert not swing.is_current


def test_a_start_takes_the_accounts_profile_unless_one_is_given() -> None:
    session = make_session()
    harsh = open_account(session.user_id, "Harsh", profile="harsh")
    who = start(session, harsh.pk)
    assert Simulator.objects.get(pk=who.simulator_id).profile == "harsh"
    stop(who)
    who = start(session, harsh.pk, profile="ideal")
    assert Simulator.objects.get(pk=who.simulator_id).profile == "ideal"


def test_equity_is_sampled_for_the_account_the_simulator_trades() -> None:
    session = make_session()
    swing = open_account(session.user_id, "Swing", startingCash=5_000.0)
    start(session, swing.pk)
    services.equity_samples_record(user_ids=[session.user_id], quotes={}, tick_seq=1, at=swing.created_at)
    assert list(EquitySample.objects.values_list("account_id", "equity")) == [(swing.pk, D(5_000))]


def test_a_reset_of_another_account_needs_no_stopped_simulator() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    swing = open_account(session.user_id, "Swing")
    swing_trader = start(session, swing.pk)
    buy_and_fill(swing_trader, 10, "100", 1)
    stop(swing_trader)
    main_trader = start(session)
    refused(AccountCode.ACCOUNT_IN_USE, services.account_reset, user_id=session.user_id)  # the main one trades
    reset = services.account_reset(user_id=session.user_id, account_id=swing.pk)
    assert reset.account_id == swing.pk and reset.cash_before == D(99_000)
    swing.refresh_from_db()
    assert swing.cash == D(100_000) and not Position.objects.filter(account=swing).exists()
    assert services.account_for(main_trader.user_id).cash == D(100_000)


# --- Opening, changing and closing -----------------------------------------------------------------


def test_an_account_name_is_unique_among_the_users_open_accounts() -> None:
    session, other = make_session(), make_session()
    open_account(session.user_id, "Swing")
    refused(AccountCode.ACCOUNT_NAME_TAKEN, open_account, user_id=session.user_id, name="Swing")
    open_account(other.user_id, "Swing")  # another user's names are theirs
    third = open_account(session.user_id, "Third")
    refused(
        AccountCode.ACCOUNT_NAME_TAKEN,
        accounts.account_update,
        user_id=session.user_id,
        account_id=third.pk,
        change=AccountSettings(name="Main"),
    )
    accounts.account_close(user_id=session.user_id, account_id=third.pk)
    assert open_account(session.user_id, "Third").pk != third.pk  # a closed account's name is free again


@override_settings(MARKET_ACCOUNTS_PER_USER=2)
def test_a_user_opens_at_most_the_accounts_the_operator_allows() -> None:
    session = make_session()
    second = open_account(session.user_id, "Second")  # with the default one: two
    refused(AccountCode.ACCOUNT_LIMIT, open_account, user_id=session.user_id, name="Third")
    accounts.account_close(user_id=session.user_id, account_id=second.pk)
    open_account(session.user_id, "Third")


@override_settings(MARKET_MAX_STARTING_CASH=50_000)
def test_starting_cash_above_the_cap_is_refused_and_nothing_opens() -> None:
    session = make_session()
    error = refused(
        AccountCode.STARTING_CASH_ABOVE_CAP, open_account, user_id=session.user_id, name="Big", startingCash=50_000.01
    )
    assert [d.field for d in error.details] == ["startingCash"]
    assert not Account.objects.filter(user_id=session.user_id, name="Big").exists()
    assert open_account(session.user_id, "Capped", startingCash=50_000.0).cash == D(50_000)


def test_making_an_account_the_default_takes_it_from_the_one_before() -> None:
    session = make_session()
    swing = open_account(session.user_id, "Swing", default=True)
    assert list(Account.objects.filter(user_id=session.user_id, is_default=True)) == [swing]
    renamed = accounts.account_update(
        user_id=session.user_id,
        account_id=swing.pk,
        change=AccountSettings(name="Swing trades", commissionPerShare=0.01, profile="ideal"),
    )
    assert (renamed.name, renamed.commission_per_share, renamed.profile) == ("Swing trades", D("0.01"), "ideal")
    assert services.commission_schedule_of(renamed).per_share == D("0.01")


def test_the_default_account_cannot_be_closed() -> None:
    session = make_session()
    main = services.account_for(session.user_id)
    refused(AccountCode.DEFAULT_ACCOUNT, accounts.account_close, user_id=session.user_id, account_id=main.pk)


def test_an_account_whose_simulator_is_live_cannot_be_closed() -> None:
    session = make_session()
    swing = open_account(session.user_id, "Swing")
    who = start(session, swing.pk)
    refused(AccountCode.ACCOUNT_IN_USE, accounts.account_close, user_id=session.user_id, account_id=swing.pk)
    stop(who)
    closed = accounts.account_close(user_id=session.user_id, account_id=swing.pk)
    assert closed.closed_at is not None and not closed.is_current
    assert Account.objects.get(user_id=session.user_id, is_current=True).name == "Main"


def test_a_closed_account_keeps_its_history_and_takes_no_trading_nor_change() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    swing = open_account(session.user_id, "Swing")
    who = start(session, swing.pk)
    order = buy_and_fill(who, 1, "100", 1)
    stop(who)
    accounts.account_close(user_id=session.user_id, account_id=swing.pk)
    again = accounts.account_close(user_id=session.user_id, account_id=swing.pk)  # changes nothing
    assert again.closed_at is not None
    for call, arguments in (
        (accounts.account_update, {"change": AccountSettings(name="Again")}),
        (services.account_reset, {}),
        (accounts.simulator_start_on_account, {"session_id": session.id, "profile": None, "choice": None}),
    ):
        refused(AccountCode.ACCOUNT_CLOSED, call, user_id=session.user_id, account_id=swing.pk, **arguments)
    window = journal.default_window(account_id=swing.pk, start=None, end=None)
    assert [o.id for o in journal.journal_orders_page(account_id=swing.pk, window=window)] == [order.id]
    assert selectors.accounts_of_user(session.user_id) == [services.account_for(session.user_id)]
    assert len(selectors.accounts_of_user(session.user_id, closed=True)) == 2


def test_another_users_account_is_unknown() -> None:
    session, other = make_session(), make_session()
    theirs = open_account(other.user_id, "Theirs")
    for call, arguments in (
        (accounts.account_update, {"change": AccountSettings(name="Mine")}),
        (accounts.account_close, {}),
        (services.account_reset, {}),
        (selectors.account_chosen, {}),
        (accounts.simulator_start_on_account, {"session_id": session.id, "profile": None, "choice": None}),
    ):
        refused(AccountCode.UNKNOWN_ACCOUNT, call, user_id=session.user_id, account_id=theirs.pk, **arguments)
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.closed_at is None


def test_an_order_placed_with_a_client_order_id_is_once_per_user_across_accounts() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    who = start(session)
    first = place(who.user_id, orderType="limit", limitPrice=90.0, clientOrderId="same")
    assert (
        services.order_place(
            user_id=who.user_id,
            ticket=OrderTicket(
                symbol="AAPL", side="buy", orderType="limit", limitPrice=90.0, quantity=10.0, clientOrderId="same"
            ),
        ).pk
        == first.pk
    )
    assert Order.objects.get(pk=first.pk).status == OrderStatus.NEW


# --- REST ------------------------------------------------------------------------------------------


def client_of(user_id: int) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=Account._meta.get_field("user").related_model.objects.get(pk=user_id))
    return client


def test_rest_lists_opens_reads_changes_and_closes_accounts() -> None:
    session = make_session()
    client = client_of(session.user_id)
    listed = client.get("/api/market/accounts/")
    assert listed.status_code == 200
    assert [(a["name"], a["isDefault"], a["isCurrent"]) for a in listed.json()] == [("Main", True, True)]

    opened = client.post("/api/market/accounts/", {"name": " Swing ", "startingCash": 25_000}, format="json")
    assert opened.status_code == 201, opened.json()
    body = opened.json()
    assert (body["name"], body["cash"], body["startingCash"], body["closedAt"]) == ("Swing", 25_000, 25_000, None)
    account_id = body["accountId"]

    assert client.get(f"/api/market/accounts/{account_id}/").json()["name"] == "Swing"
    changed = client.patch(f"/api/market/accounts/{account_id}/", {"name": "Swing 2", "default": True}, format="json")
    assert changed.status_code == 200 and (changed.json()["name"], changed.json()["isDefault"]) == ("Swing 2", True)
    main_id = next(a["accountId"] for a in client.get("/api/market/accounts/").json() if a["name"] == "Main")
    closed = client.post(f"/api/market/accounts/{main_id}/close/")
    assert closed.status_code == 200 and closed.json()["closedAt"] is not None
    assert [a["name"] for a in client.get("/api/market/accounts/").json()] == ["Swing 2"]
    assert [a["name"] for a in client.get("/api/market/accounts/?closed=true").json()] == ["Main", "Swing 2"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("get", "/api/market/accounts/{theirs}/", None, 404, "unknown_account"),
        ("patch", "/api/market/accounts/{theirs}/", {"name": "Mine"}, 404, "unknown_account"),
        ("post", "/api/market/accounts/{theirs}/close/", None, 404, "unknown_account"),
        ("get", "/api/market/journal/orders/?accountId={theirs}", None, 404, "unknown_account"),
        ("post", "/api/market/account/reset/?accountId={theirs}", None, 404, "unknown_account"),
        ("get", "/api/market/accounts/abc/", None, 400, "invalid_request"),
        ("post", "/api/market/accounts/", {"name": ""}, 400, "invalid_request"),
        ("post", "/api/market/accounts/", {"name": "Main"}, 409, "account_name_taken"),
        ("post", "/api/market/accounts/", {"name": "Rich", "startingCash": 20_000_000}, 422, "starting_cash_above_cap"),
        ("post", "/api/market/accounts/{main}/close/", None, 409, "default_account"),
    ],
)
def test_rest_refuses_bad_account_requests_with_the_standard_error(
    method: str, path: str, body: dict | None, status: int, code: str
) -> None:
    session, other = make_session(), make_session()
    main = services.account_for(session.user_id)
    theirs = open_account(other.user_id, "Theirs")
    client = client_of(session.user_id)
    response = getattr(client, method)(path.format(theirs=theirs.pk, main=main.pk), body, format="json")
    assert response.status_code == status and body_json(response)["code"] == code
    assert Account.objects.filter(user_id=session.user_id).count() == 1
    theirs.refresh_from_db()
    assert (theirs.name, theirs.closed_at) == ("Theirs", None)


def test_rest_reads_the_journal_of_the_account_asked_for() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    swing = open_account(session.user_id, "Swing")
    who = start(session, swing.pk)
    order = buy_and_fill(who, 2, "100", 1)
    stop(who)
    start(session)  # the default account is current again
    client = client_of(session.user_id)
    assert body_json(client.get("/api/market/journal/orders/")) == []
    swing_orders = body_json(client.get(f"/api/market/journal/orders/?accountId={swing.pk}"))
    assert [o["orderId"] for o in swing_orders] == [str(order.id)]
    fills = body_json(client.get(f"/api/market/journal/fills/?accountId={swing.pk}"))
    assert [f["orderId"] for f in fills] == [str(order.id)]


def test_risk_limits_are_set_per_account_and_hold_the_account_they_belong_to() -> None:
    session = make_session()
    set_prices({"AAPL": "100"})
    swing = open_account(session.user_id, "Swing")
    client = client_of(session.user_id)
    response = client.put(f"/api/market/account/limits/?accountId={swing.pk}", {"maxOrderValue": 500}, format="json")
    assert response.status_code == 200 and response.json()["limits"]["maxOrderValue"] == 500
    assert client.get("/api/market/account/limits/").json()["limits"]["maxOrderValue"] is None  # Main's
    assert client.get(f"/api/market/account/limits/?accountId={swing.pk}").json()["limits"]["maxOrderValue"] == 500
    who = start(session)
    main_order = place(who.user_id, quantity=10)  # 1,000 in Main: no limit
    stop(who)
    assert Order.objects.get(pk=main_order.pk).status == OrderStatus.CANCELED
    who = start(session, swing.pk)
    with pytest.raises(ProtocolError) as error:
        place(who.user_id, quantity=10)
    assert error.value.code == "order_value_limit"


def test_a_reset_keeps_the_users_tokens_and_devices() -> None:
    issued = issue_token()
    session = make_session(issued.device.user)
    set_prices({"AAPL": "100"})
    who = start(session)
    buy_and_fill(who, 10, "100", 1)
    stop(who)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert client.post("/api/market/account/reset/").status_code == 200
    assert client.get("/api/market/accounts/").status_code == 200  # the same token still holds
    issued.device.refresh_from_db()
    assert issued.device.is_valid and services.account_for(session.user_id).cash == D(100_000)
