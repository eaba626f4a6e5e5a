"""Placing and canceling orders and applying fills (market_app.services), against the real ORM."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pydantic import ValidationError

from market_app import services
from market_app.accounting import FillIntent, OpenOrder
from market_app.errors import MarketCode
from market_app.matcher import StateChange
from market_app.messages import OrderTicket, UserOrder, UserPosition
from market_app.models import Account, Fill, MarketFeed, Order, OrderStatus, Position
from market_app.prices import Quote
from market_app.snapshots import exchange_data_status
from sessions_app.realtime.errors import ProtocolError
from simulator_app import services as simulator_services
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator, SimulatorStatus
from simulator_app.services import HeldSimulator
from tests.support.factories import make_session, make_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal
STARTING_CASH = D(100_000)


@dataclass(frozen=True)
class Trader:
    user_id: int
    simulator_id: uuid.UUID
    worker_id: str
    epoch: int


def trader() -> Trader:
    """A new user whose simulator runs on a new worker, as `run_on` in test_simulator_services leaves it."""
    worker_id = make_worker()
    session = make_session()
    simulator = simulator_services.simulator_start(user_id=session.user_id, session_id=session.id)
    claim = simulator_services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    assert claim is not None
    assert simulator_services.simulator_mark_running(
        simulator_id=simulator.id, worker_id=worker_id, epoch=claim.epoch, reason="up"
    )
    return Trader(session.user_id, simulator.id, worker_id, claim.epoch)


def set_prices(prices: dict[str, str], *, seq: int = 1) -> None:
    quotes = {symbol: Quote(price=D(price), open=D(price), volume=1_000).to_state() for symbol, price in prices.items()}
    MarketFeed.objects.filter(pk=1).update(seq=seq, quotes=quotes)


def place(user_id: int, **ticket: object) -> Order:
    fields: dict[str, object] = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 10.0}
    fields.update(ticket)
    return services.order_place(user_id=user_id, ticket=OrderTicket(**fields))


def apply(who: Trader, *fills: FillIntent) -> list[OpenOrder] | None:
    return services.fills_apply(
        simulator_id=who.simulator_id, worker_id=who.worker_id, epoch=who.epoch, user_id=who.user_id, fills=fills
    )


def refused(code: StrEnum, user_id: int, **ticket: object) -> None:
    with pytest.raises(ProtocolError) as error:
        place(user_id, **ticket)
    assert error.value.code == code


def holding(who: Trader, quantity: float, price: str = "100", *, tick_seq: int = 1) -> Order:
    """Buy `quantity` AAPL and fill it at `price`: the trader then holds it."""
    order = place(who.user_id, quantity=quantity)
    assert apply(who, FillIntent(order.id, D(repr(quantity)), D(price), tick_seq)) is not None
    return order


def cash(user_id: int) -> Decimal:
    return Account.objects.get(user_id=user_id).cash


# --- Placing -------------------------------------------------------------------------------------------------


def test_placing_an_order_needs_a_running_simulator() -> None:
    make_worker()
    session = make_session()
    simulator_services.simulator_start(user_id=session.user_id, session_id=session.id)  # starting, not running
    set_prices({"AAPL": "190.00"})
    refused(SimulatorCode.SIMULATOR_NOT_RUNNING, session.user_id)
    assert not Order.objects.exists()


def test_a_placed_order_is_new_belongs_to_the_users_simulator_and_moves_no_cash() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, orderType="limit", limitPrice=189.5, quantity=2.5, clientOrderId="ticket-1")
    stored = Order.objects.get(pk=order.pk)
    assert stored.status == OrderStatus.NEW and stored.simulator_id == who.simulator_id
    assert (stored.quantity, stored.limit_price, stored.filled_qty) == (D("2.5"), D("189.5"), D(0))
    assert stored.client_order_id == "ticket-1" and stored.average_price is None
    assert cash(who.user_id) == STARTING_CASH


def test_an_order_for_an_unknown_symbol_is_refused() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    refused(MarketCode.UNKNOWN_SYMBOL, who.user_id, symbol="ZZZZ")
    assert not Order.objects.exists()


def test_a_quantity_with_more_than_eight_decimals_is_refused() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    refused(MarketCode.INVALID_QUANTITY, who.user_id, quantity=0.123456789)
    assert place(who.user_id, quantity=0.12345678).quantity == D("0.12345678")


@pytest.mark.parametrize(
    "ticket",
    [
        pytest.param({"orderType": "limit"}, id="limit-without-price"),
        pytest.param({"orderType": "market", "limitPrice": 190.0}, id="market-with-price"),
        pytest.param({"orderType": "limit", "limitPrice": 190.005}, id="price-off-the-tick-grid"),
    ],
)
def test_an_order_with_a_missing_superfluous_or_off_tick_price_is_refused(ticket: dict[str, object]) -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    refused(MarketCode.INVALID_PRICE, who.user_id, **ticket)
    assert not Order.objects.exists()


def test_a_buy_costing_more_than_the_cash_is_refused() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    refused(MarketCode.INSUFFICIENT_CASH, who.user_id, quantity=527.0)  # 100 130 > 100 000
    assert place(who.user_id, quantity=526.0).quantity == D(526)  # 99 940


def test_cash_reserved_by_an_open_limit_buy_is_not_free_for_another_buy() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    place(who.user_id, orderType="limit", limitPrice=190.0, quantity=500.0)  # reserves 95 000
    refused(MarketCode.INSUFFICIENT_CASH, who.user_id, orderType="limit", limitPrice=190.0, quantity=30.0)
    assert place(who.user_id, orderType="limit", limitPrice=190.0, quantity=26.0).quantity == D(26)


def test_selling_more_than_the_position_is_refused() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    holding(who, 10.0)
    refused(MarketCode.INSUFFICIENT_POSITION, who.user_id, side="sell", quantity=10.5)
    refused(
        MarketCode.INSUFFICIENT_POSITION, who.user_id, symbol="MSFT", side="sell", orderType="limit", limitPrice=420.0
    )


def test_quantity_reserved_by_open_sells_cannot_be_sold_again() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    holding(who, 10.0)
    place(who.user_id, side="sell", orderType="limit", limitPrice=150.0, quantity=6.0)
    refused(MarketCode.INSUFFICIENT_POSITION, who.user_id, side="sell", quantity=5.0)
    assert place(who.user_id, side="sell", quantity=4.0).quantity == D(4)


def test_a_market_order_without_a_price_in_the_feed_is_refused_as_market_unavailable() -> None:
    who = trader()
    set_prices({"MSFT": "420.00"})
    refused(MarketCode.MARKET_UNAVAILABLE, who.user_id, symbol="AAPL")
    assert not Order.objects.exists()


def test_placing_the_same_client_order_id_twice_returns_the_first_order() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    first = place(who.user_id, clientOrderId="abc-1")
    again = place(who.user_id, clientOrderId="abc-1")
    assert again.pk == first.pk
    assert Order.objects.filter(user_id=who.user_id).count() == 1
    assert place(who.user_id, clientOrderId="abc-2").pk != first.pk


# --- Fills ---------------------------------------------------------------------------------------------------


def test_a_fill_updates_the_order_records_the_fill_and_moves_the_position_and_cash_together() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, orderType="limit", limitPrice=190.0, quantity=10.0)

    still_open = apply(who, FillIntent(order.id, D(4), D("189.50"), 7))

    order.refresh_from_db()
    assert (order.status, order.filled_qty, order.average_price) == (OrderStatus.PARTIALLY_FILLED, D(4), D("189.5"))
    fill = Fill.objects.get(order=order)
    assert (fill.tick_seq, fill.quantity, fill.price, fill.side) == (7, D(4), D("189.5"), "buy")
    position = Position.objects.get(user_id=who.user_id, instrument__symbol="AAPL")
    assert (position.quantity, position.average_price, position.realized_pnl) == (D(4), D("189.5"), D(0))
    assert cash(who.user_id) == STARTING_CASH - D(758)
    assert still_open is not None and [(o.id, o.filled_qty) for o in still_open] == [(order.id, D(4))]


def test_applying_the_same_fill_again_changes_nothing() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, quantity=10.0)
    intent = FillIntent(order.id, D(4), D("189.50"), 7)
    apply(who, intent)

    apply(who, intent)  # a worker that adopted the simulator replays the tick

    order.refresh_from_db()
    assert (order.filled_qty, order.status) == (D(4), OrderStatus.PARTIALLY_FILLED)
    assert Fill.objects.filter(order=order).count() == 1
    assert Position.objects.get(user_id=who.user_id).quantity == D(4)
    assert cash(who.user_id) == STARTING_CASH - D(758)


def test_a_second_ticks_fill_completes_the_order() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, quantity=10.0)
    apply(who, FillIntent(order.id, D(4), D("189.50"), 7))

    still_open = apply(who, FillIntent(order.id, D(6), D(190), 8))

    order.refresh_from_db()
    assert (order.status, order.filled_qty, order.average_price) == (OrderStatus.FILLED, D(10), D("189.8"))
    assert sorted(Fill.objects.filter(order=order).values_list("tick_seq", flat=True)) == [7, 8]
    position = Position.objects.get(user_id=who.user_id)
    assert (position.quantity, position.average_price) == (D(10), D("189.8"))
    assert cash(who.user_id) == STARTING_CASH - D(1898)
    assert still_open == []


@pytest.mark.parametrize("stale", ["epoch", "worker"])
def test_a_worker_that_no_longer_holds_the_simulator_applies_nothing(stale: str) -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, quantity=10.0)
    other_worker = make_worker()

    result = services.fills_apply(
        simulator_id=who.simulator_id,
        worker_id=other_worker if stale == "worker" else who.worker_id,
        epoch=who.epoch + 1 if stale == "epoch" else who.epoch,
        user_id=who.user_id,
        fills=[FillIntent(order.id, D(4), D(190), 7)],
    )

    assert result is None
    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.NEW, D(0))
    assert not Fill.objects.exists() and not Position.objects.exists()
    assert cash(who.user_id) == STARTING_CASH


@override_settings(MARKET_STARTING_CASH=1_000)
def test_a_buy_fill_is_capped_to_what_the_cash_can_pay() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, quantity=5.0)  # 950 at the last price

    apply(who, FillIntent(order.id, D(5), D(300), 2))  # the price jumped: 1 000 pays 3.33333333

    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, D("3.33333333"))
    assert Fill.objects.get(order=order).quantity == D("3.33333333")
    assert Position.objects.get(user_id=who.user_id).quantity == D("3.33333333")
    assert cash(who.user_id) == D("0.00000100")


@override_settings(MARKET_STARTING_CASH=1_000)
def test_a_buy_the_cash_cannot_pay_at_all_is_canceled_with_a_reason() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, quantity=5.0)
    Account.objects.filter(user_id=who.user_id).update(cash=D(0))

    still_open = apply(who, FillIntent(order.id, D(5), D(190), 2))

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED and order.reason == "not enough cash to fill"
    assert order.filled_qty == D(0) and not Fill.objects.exists()
    assert still_open == []


# --- Canceling -----------------------------------------------------------------------------------------------


def test_canceling_an_open_order_cancels_it() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, orderType="limit", limitPrice=180.0)
    canceled = services.order_cancel(user_id=who.user_id, order_id=order.id)
    assert canceled.pk == order.pk and canceled.status == OrderStatus.CANCELED
    assert Order.objects.get(pk=order.pk).reason == "canceled by the user"


def test_a_filled_order_cannot_be_canceled() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    order = holding(who, 10.0)
    with pytest.raises(ProtocolError) as error:
        services.order_cancel(user_id=who.user_id, order_id=order.id)
    assert error.value.code == MarketCode.ORDER_NOT_CANCELABLE
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED


def test_another_users_order_is_not_found() -> None:
    owner, other = trader(), trader()
    set_prices({"AAPL": "190.00"})
    order = place(owner.user_id, orderType="limit", limitPrice=180.0)
    with pytest.raises(ProtocolError) as error:
        services.order_cancel(user_id=other.user_id, order_id=order.id)
    assert error.value.code == MarketCode.ORDER_NOT_FOUND
    assert Order.objects.get(pk=order.pk).status == OrderStatus.NEW


def test_stopping_a_simulator_no_worker_holds_cancels_the_users_open_orders() -> None:
    who, bystander = trader(), trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, orderType="limit", limitPrice=180.0)
    others = place(bystander.user_id, orderType="limit", limitPrice=180.0)
    released = simulator_services.worker_release(
        worker_id=who.worker_id, held={who.simulator_id: HeldSimulator(who.epoch, None)}
    )
    assert released == [who.simulator_id]

    stop = simulator_services.simulator_stop(user_id=who.user_id, reason="done for today")

    assert stop.status == SimulatorStatus.STOPPED
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    assert order.reason.startswith("simulator stopped") and "done for today" in order.reason
    assert Order.objects.get(pk=others.pk).status == OrderStatus.NEW


def test_stopping_a_held_simulator_cancels_the_users_open_orders_when_its_worker_finishes() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    filled = holding(who, 10.0)
    partial = place(who.user_id, side="sell", quantity=6.0)
    apply(who, FillIntent(partial.id, D(2), D(100), 2))
    assert simulator_services.simulator_stop(user_id=who.user_id, reason="done").status == SimulatorStatus.STOPPING

    assert simulator_services.simulator_finish_stop(
        simulator_id=who.simulator_id, worker_id=who.worker_id, epoch=who.epoch, state={}
    )

    partial.refresh_from_db()
    assert partial.status == OrderStatus.CANCELED and partial.filled_qty == D(2)
    assert partial.reason.startswith("simulator stopped")
    assert Order.objects.get(pk=filled.pk).status == OrderStatus.FILLED
    assert Simulator.objects.get(pk=who.simulator_id).status == SimulatorStatus.STOPPED


# --- The snapshot --------------------------------------------------------------------------------------------


def test_the_snapshot_shows_realized_and_unrealized_profit_after_a_buy_and_a_partial_sell() -> None:
    who = trader()
    set_prices({"AAPL": "100.00", "MSFT": "420.00"})
    holding(who, 10.0, "100")  # cash 99 000
    sell = place(who.user_id, side="sell", orderType="limit", limitPrice=110.0, quantity=4.0)
    apply(who, FillIntent(sell.id, D(4), D(110), 2))  # realizes 40, cash 99 440
    place(who.user_id, symbol="MSFT", orderType="limit", limitPrice=400.0, quantity=2.0)
    set_prices({"AAPL": "120.00", "MSFT": "421.50"}, seq=3)

    status = exchange_data_status(user_id=who.user_id, reason="request")

    assert status.seq == 3 and status.reason == "request"
    assert status.userPositions == {
        "AAPL": UserPosition(
            symbol="AAPL",
            quantity=6.0,
            value=720.0,
            averagePrice=100.0,
            lastPrice=120.0,
            realizedPnl=40.0,
            unrealizedPnl=120.0,
        )
    }
    account = status.account
    assert (account.cash, account.startingCash, account.positionsValue) == (99_440.0, 100_000.0, 720.0)
    assert (account.equity, account.reservedCash) == (100_160.0, 800.0)


def test_the_snapshot_lists_every_feed_quote_and_the_users_orders() -> None:
    who = trader()
    set_prices({"AAPL": "100.00", "MSFT": "420.00", "EUR-USD": "1.0850"}, seq=5)
    bought = holding(who, 3.0, "100")
    open_sell = place(who.user_id, side="sell", orderType="limit", limitPrice=130.0, quantity=1.0, clientOrderId="s1")
    someone_else = trader()
    place(someone_else.user_id, quantity=1.0)

    status = exchange_data_status(user_id=who.user_id, reason="request", request_id="r-1")

    assert status.requestId == "r-1"
    assert status.symbols.keys() == {"AAPL", "MSFT", "EUR-USD"}
    assert status.symbols["EUR-USD"].model_dump() == {"price": 1.085, "change": 0.0, "volume": 1_000}
    assert status.userOrders.keys() == {str(bought.id), str(open_sell.id)}
    shown = status.userOrders[str(open_sell.id)]
    assert isinstance(shown, UserOrder)
    assert shown.model_dump(exclude={"createdAt", "updatedAt"}) == {
        "orderId": str(open_sell.id),
        "status": "new",
        "filledQty": 0.0,
        "symbol": "AAPL",
        "side": "sell",
        "orderType": "limit",
        "quantity": 1.0,
        "limitPrice": 130.0,
        "averagePrice": None,
        "clientOrderId": "s1",
        "reason": "",
    }
    assert status.userOrders[str(bought.id)].status == "filled"
    assert status.userOrders[str(bought.id)].averagePrice == 100.0


def test_the_snapshot_shows_an_order_that_closed_since_the_last_one_as_it_ended() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    resting = place(who.user_id, orderType="limit", limitPrice=90.0)
    bought = place(who.user_id, quantity=2.0)
    assert exchange_data_status(user_id=who.user_id, reason="request").userOrders[str(bought.id)].status == "new"

    services.order_cancel(user_id=who.user_id, order_id=resting.id)
    apply(who, FillIntent(bought.id, D(2), D("100.5"), 1))

    shown = exchange_data_status(user_id=who.user_id, reason="request").userOrders
    assert (shown[str(resting.id)].status, shown[str(resting.id)].reason) == ("canceled", "canceled by the user")
    assert (shown[str(bought.id)].status, shown[str(bought.id)].averagePrice) == ("filled", 100.5)


def test_the_snapshot_lists_the_open_orders_then_the_fifty_most_recent_closed_ones_newest_first() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    closed = []
    for _ in range(53):
        order = place(who.user_id, orderType="limit", limitPrice=90.0)
        closed.append(services.order_cancel(user_id=who.user_id, order_id=order.id))
    exchange_data_status(user_id=who.user_id, reason="request")  # the views of the first 50 are kept
    still_open = [place(who.user_id, orderType="limit", limitPrice=80.0 + n) for n in range(2)]
    closed.append(
        services.order_cancel(user_id=who.user_id, order_id=place(who.user_id, orderType="limit", limitPrice=90.0).id)
    )

    shown = list(exchange_data_status(user_id=who.user_id, reason="request").userOrders)

    newest_closed = [str(o.id) for o in reversed(closed)][:50]
    assert shown == [str(o.id) for o in reversed(still_open)] + newest_closed


def test_a_snapshot_reads_again_only_the_closed_orders_it_has_not_shown_before() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    for _ in range(3):
        services.order_cancel(user_id=who.user_id, order_id=place(who.user_id, orderType="limit", limitPrice=90.0).id)
    exchange_data_status(user_id=who.user_id, reason="request")
    with CaptureQueriesContext(connection) as again:
        exchange_data_status(user_id=who.user_id, reason="request")
    # Closed in another process (whose snapshot this process's views did not see).
    ended = place(who.user_id, orderType="limit", limitPrice=90.0)
    Order.objects.filter(pk=ended.pk).update(status=OrderStatus.CANCELED, updated_at=timezone.now())

    with CaptureQueriesContext(connection) as after_one_closed:
        status = exchange_data_status(user_id=who.user_id, reason="request")

    assert len(status.userOrders) == 4 and status.userOrders[str(ended.id)].status == "canceled"
    assert len(after_one_closed.captured_queries) == len(again.captured_queries) + 1


def test_the_snapshot_and_the_matching_see_an_open_orders_queue_place_as_the_worker_moves_it() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    resting = place(who.user_id, orderType="limit", limitPrice=99.0)
    exchange_data_status(user_id=who.user_id, reason="request")  # the row and the view of this version are kept
    services.open_orders_for_matching([who.user_id])

    services.fills_apply(
        simulator_id=who.simulator_id,
        worker_id=who.worker_id,
        epoch=who.epoch,
        user_id=who.user_id,
        fills=[],
        changes=[StateChange(resting.id, trail_anchor=None, triggered=False, queue_ahead=D(300))],
    )

    assert exchange_data_status(user_id=who.user_id, reason="request").userOrders[str(resting.id)].queueAhead == 300
    assert services.open_orders_for_matching([who.user_id])[who.user_id][0].queue_ahead == D(300)


def test_open_orders_are_read_again_only_when_written() -> None:
    who = trader()
    set_prices({"AAPL": "100.00"})
    resting = [place(who.user_id, orderType="limit", limitPrice=90.0 + n) for n in range(5)]
    services.open_orders_for_matching([who.user_id])
    with CaptureQueriesContext(connection) as unchanged:
        services.open_orders_for_matching([who.user_id])
    Order.objects.filter(pk=resting[2].pk).update(limit_price=D("92.5"), updated_at=timezone.now())

    with CaptureQueriesContext(connection) as one_written:
        orders = services.open_orders_for_matching([who.user_id])[who.user_id]

    assert [o.id for o in orders] == [o.id for o in resting] and orders[2].limit_price == D("92.5")
    assert len(unchanged.captured_queries) == 1  # the versions only
    assert len(one_written.captured_queries) == 2  # and the row of the one written


# --- Edge cases found while writing these ------------------------------------------------------------


def test_canceling_orders_because_the_simulator_stopped_updates_their_updated_at() -> None:
    who = trader()
    set_prices({"AAPL": "190.00"})
    order = place(who.user_id, orderType="limit", limitPrice=180.0)
    long_ago = timezone.now() - timedelta(hours=1)
    Order.objects.filter(pk=order.pk).update(updated_at=long_ago)
    simulator_services.worker_release(worker_id=who.worker_id, held={who.simulator_id: HeldSimulator(who.epoch, None)})

    simulator_services.simulator_stop(user_id=who.user_id, reason="done")

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    assert order.updated_at > long_ago


@pytest.mark.parametrize("price", [1e30, 1e17, 1_000_000_000.01])
def test_a_price_above_the_largest_amount_breaks_the_tickets_schema(price: float) -> None:
    # The schema states the bound (maximum 1,000,000,000), so no service sees such a ticket.
    with pytest.raises(ValidationError, match="less than or equal to 1000000000"):
        OrderTicket(symbol="AAPL", side="sell", orderType="limit", limitPrice=price, quantity=1.0)
