"""The exchange's order types, classes, replace, commissions, latency and profiles in the services
(market_app.services), against the real ORM."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_app import services
from market_app.accounting import FillIntent
from market_app.errors import MarketCode
from market_app.matcher import Expiry, StateChange
from market_app.messages import OrderAmendment, OrderTicket
from market_app.models import Account, Fill, Order, OrderStatus, Position
from market_app.prices import Quote
from market_app.snapshots import exchange_data_status
from sessions_app.realtime.errors import ProtocolError
from simulator_app import services as simulator_services
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator
from tests.market_app.test_trading_services import Trader, set_prices
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]

D = Decimal


def trader(profile: str | None = None) -> Trader:
    worker_id = make_worker()
    session = make_session()
    simulator = simulator_services.simulator_start(user_id=session.user_id, session_id=session.id, profile=profile)
    claim = simulator_services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    assert claim is not None
    assert simulator_services.simulator_mark_running(
        simulator_id=simulator.id, worker_id=worker_id, epoch=claim.epoch, reason="up"
    )
    return Trader(session.user_id, simulator.id, worker_id, claim.epoch)


def place(who: Trader, **ticket: object) -> Order:
    fields: dict[str, object] = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 10.0}
    fields.update(ticket)
    return services.order_place(user_id=who.user_id, ticket=OrderTicket(**fields))


def apply(who: Trader, *fills: FillIntent, changes: tuple = (), expiries: tuple = ()) -> None:
    assert (
        services.fills_apply(
            simulator_id=who.simulator_id,
            worker_id=who.worker_id,
            epoch=who.epoch,
            user_id=who.user_id,
            fills=fills,
            changes=changes,
            expiries=expiries,
        )
        is not None
    )


def refused(code: StrEnum, who: Trader, **ticket: object) -> None:
    with pytest.raises(ProtocolError) as error:
        place(who, **ticket)
    assert error.value.code == code


def bought(who: Trader, quantity: str, price: str = "100") -> Order:
    order = place(who, quantity=float(quantity))
    apply(who, FillIntent(order.id, D(quantity), D(price), 1))
    return order


@pytest.fixture(autouse=True)
def prices(default_instruments: None) -> None:
    set_prices({"AAPL": "100.00", "MSFT": "420.00"}, seq=5)


# --- Refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ticket"),
    [
        (MarketCode.INVALID_STOP_PRICE, {"orderType": "stop", "stopPrice": 99.0}),  # a buy stop below the price
        (MarketCode.INVALID_STOP_PRICE, {"orderType": "stop"}),
        (MarketCode.INVALID_STOP_PRICE, {"orderType": "limit", "limitPrice": 99.0, "stopPrice": 101.0}),
        (MarketCode.INVALID_PRICE, {"orderType": "stop_limit", "stopPrice": 101.0}),
        (MarketCode.INVALID_TRAIL, {"orderType": "trailing_stop", "trailAmount": 1.0, "trailPercent": 2.0}),
        (MarketCode.INVALID_TRAIL, {"orderType": "trailing_stop"}),
        (MarketCode.INVALID_TRAIL, {"orderType": "market", "trailPercent": 2.0}),
        (MarketCode.INVALID_TIME_IN_FORCE, {"orderType": "stop", "stopPrice": 101.0, "timeInForce": "ioc"}),
        (
            MarketCode.INVALID_BRACKET,
            {"orderClass": "bracket", "takeProfit": {"limitPrice": 95.0}, "stopLoss": {"stopPrice": 90.0}},
        ),
        (MarketCode.INVALID_BRACKET, {"orderClass": "bracket", "takeProfit": {"limitPrice": 110.0}}),
        (MarketCode.INVALID_BRACKET, {"takeProfit": {"limitPrice": 110.0}}),
        (
            MarketCode.INVALID_BRACKET,
            {
                "orderType": "stop",
                "stopPrice": 101.0,
                "orderClass": "bracket",
                "takeProfit": {"limitPrice": 110.0},
                "stopLoss": {"stopPrice": 90.0},
            },
        ),
    ],
)
def test_tickets_that_contradict_their_type_or_class_are_refused_with_documented_codes(
    code: StrEnum, ticket: dict[str, object]
) -> None:
    refused(code, trader(), **ticket)


def test_a_sell_stop_above_the_price_is_on_the_wrong_side() -> None:
    who = trader()
    bought(who, "10")
    refused(MarketCode.INVALID_STOP_PRICE, who, side="sell", orderType="stop", stopPrice=101.0)
    assert place(who, side="sell", orderType="stop", stopPrice=99.0).stop_price == D("99.00")


def test_an_unknown_profile_is_refused_and_the_chosen_one_is_kept() -> None:
    session = make_session()
    with pytest.raises(ProtocolError) as error:
        simulator_services.simulator_start(user_id=session.user_id, session_id=session.id, profile="brutal")
    assert error.value.code == SimulatorCode.UNKNOWN_PROFILE
    assert Simulator.objects.get(pk=trader("harsh").simulator_id).profile == "harsh"
    assert Simulator.objects.get(pk=trader().simulator_id).profile == "realistic"


# --- Latency, time in force, matcher state ---------------------------------------------------------------


def test_an_order_takes_effect_after_its_profiles_entry_latency() -> None:
    assert place(trader("ideal")).active_at_ms == 0
    realistic, harsh = place(trader("realistic")), place(trader("harsh"))
    assert realistic.active_at_ms > 0 and harsh.active_at_ms > realistic.active_at_ms


@override_settings(MARKET_DAY_TICKS=100)
def test_a_day_order_expires_at_the_next_simulated_day() -> None:
    order = place(trader(), orderType="limit", limitPrice=90.0, timeInForce="day")
    assert order.expires_seq == 100  # the feed is at tick 5


def test_the_matchers_state_is_kept_so_an_adopting_worker_continues_it() -> None:
    who = trader()
    bought(who, "10")
    trailing = place(who, side="sell", orderType="trailing_stop", trailPercent=5.0, quantity=10.0)
    assert trailing.trail_anchor == D("100.00")
    apply(who, changes=(StateChange(trailing.id, D("104.00"), False, None),))
    [reloaded] = services.open_orders_for_matching([who.user_id])[who.user_id]
    assert reloaded.trail_anchor == D("104.00") and reloaded.trail_percent == D("5.0")
    view = exchange_data_status(user_id=who.user_id, reason="request").userOrders[str(trailing.id)]
    assert view.trailingStopPrice == pytest.approx(98.8)


def test_an_expiry_cancels_the_order_with_its_reason() -> None:
    who = trader()
    order = place(who, orderType="limit", limitPrice=90.0, timeInForce="ioc")
    apply(who, expiries=(Expiry(order.id, "immediate or cancel: the rest of it was canceled"),))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED and order.reason.startswith("immediate or cancel")


# --- Brackets and OCO ------------------------------------------------------------------------------------


def test_a_bracket_activates_its_exits_when_the_entry_fills_and_one_exit_cancels_the_other() -> None:
    who = trader()
    entry = place(
        who, orderClass="bracket", takeProfit={"limitPrice": 110.0}, stopLoss={"stopPrice": 95.0, "limitPrice": 94.0}
    )
    assert not entry.children.exists()
    apply(who, FillIntent(entry.id, D(10), D("100.00"), 1))
    take, stop = sorted(entry.children.all(), key=lambda order: order.order_type)
    assert (take.order_type, take.limit_price, take.side, take.quantity) == ("limit", D("110.00"), "sell", D(10))
    assert (stop.order_type, stop.stop_price, stop.limit_price) == ("stop_limit", D("95.00"), D("94.00"))
    assert take.oco_group == stop.oco_group is not None
    apply(who, FillIntent(take.id, D(4), D("110.00"), 2))
    stop.refresh_from_db()
    take.refresh_from_db()
    assert stop.status == OrderStatus.CANCELED and stop.reason.startswith("one cancels other")
    assert take.status == OrderStatus.PARTIALLY_FILLED


def test_a_bracket_entry_canceled_part_filled_protects_what_it_filled() -> None:
    who = trader("ideal")
    entry = place(
        who,
        orderType="limit",
        limitPrice=100.0,
        orderClass="bracket",
        takeProfit={"limitPrice": 110.0},
        stopLoss={"stopPrice": 95.0},
    )
    apply(who, FillIntent(entry.id, D(3), D("100.00"), 1))
    services.order_cancel(user_id=who.user_id, order_id=entry.id)
    assert sorted(child.quantity for child in entry.children.all()) == [D(3), D(3)]


def test_an_oco_pair_holds_the_position_once_and_canceling_one_leg_cancels_both() -> None:
    who = trader()
    bought(who, "10")
    leg = place(
        who,
        side="sell",
        orderType="limit",
        limitPrice=110.0,
        quantity=6.0,
        orderClass="oco",
        stopLoss={"stopPrice": 95.0},
    )
    legs = list(Order.objects.filter(oco_group=leg.oco_group))
    assert sorted(order.order_type for order in legs) == ["limit", "stop"]
    place(who, side="sell", orderType="limit", limitPrice=120.0, quantity=4.0)
    refused(MarketCode.INSUFFICIENT_POSITION, who, side="sell", orderType="limit", limitPrice=120.0, quantity=1.0)
    services.order_cancel(user_id=who.user_id, order_id=leg.id)
    assert set(Order.objects.filter(oco_group=leg.oco_group).values_list("status", flat=True)) == {"canceled"}


# --- Replace ----------------------------------------------------------------------------------------------


def replace(who: Trader, order: Order, **fields: object) -> Order:
    return services.order_replace(user_id=who.user_id, order_id=order.id, amendment=OrderAmendment(**fields))


def test_a_new_price_loses_the_queue_position_and_a_smaller_quantity_keeps_it() -> None:
    who = trader()
    order = place(who, orderType="limit", limitPrice=90.0)
    apply(who, changes=(StateChange(order.id, None, False, D(300)),))
    smaller = replace(who, order, quantity=5.0)
    assert smaller.quantity == D(5) and smaller.queue_ahead == D(300)
    repriced = replace(who, order, limitPrice=91.0)
    assert repriced.limit_price == D("91.00") and repriced.queue_ahead is None and repriced.active_at_ms > 0


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        (MarketCode.ORDER_NOT_REPLACEABLE, {}),
        (MarketCode.ORDER_NOT_REPLACEABLE, {"limitPrice": 90.0}),  # changes nothing
        (MarketCode.INVALID_STOP_PRICE, {"stopPrice": 80.0}),  # a limit order has none
        (MarketCode.INVALID_PRICE, {"limitPrice": 90.001}),
        (MarketCode.INSUFFICIENT_CASH, {"quantity": 100_000.0}),
    ],
)
def test_a_replace_that_does_not_fit_the_order_is_refused(code: StrEnum, fields: dict[str, object]) -> None:
    who = trader()
    order = place(who, orderType="limit", limitPrice=90.0)
    with pytest.raises(ProtocolError) as error:
        replace(who, order, **fields)
    assert error.value.code == code


def test_a_bracket_exit_can_be_repriced_but_its_entry_must_stay_bracketed() -> None:
    who = trader()
    entry = place(
        who,
        orderType="limit",
        limitPrice=100.0,
        orderClass="bracket",
        takeProfit={"limitPrice": 110.0},
        stopLoss={"stopPrice": 95.0},
    )
    with pytest.raises(ProtocolError) as error:
        replace(who, entry, limitPrice=111.0)
    assert error.value.code == MarketCode.INVALID_BRACKET
    apply(who, FillIntent(entry.id, D(10), D("100.00"), 1))
    take = entry.children.get(order_type="limit")
    assert replace(who, take, limitPrice=105.0).limit_price == D("105.00")


def test_a_filled_order_cannot_be_replaced() -> None:
    who = trader()
    order = bought(who, "10")
    with pytest.raises(ProtocolError) as error:
        replace(who, order, quantity=20.0)
    assert error.value.code == MarketCode.ORDER_NOT_REPLACEABLE


def test_a_replace_in_a_market_of_the_simulators_own_is_checked_against_its_prices_not_the_shared_feeds() -> None:
    set_prices({"AAPL": "100.00"})
    who = trader()
    own = {"AAPL": Quote(price=D(50), open=D(50), volume=1_000).to_state()}
    Simulator.objects.filter(pk=who.simulator_id).update(
        market={"source": "synthetic", "seed": 1}, state={"ownMarket": {"quotes": own}}
    )
    order = place(who, orderType="stop", stopPrice=55.0, quantity=1.0)  # above its own market's 50

    replaced = replace(who, order, stopPrice=60.0)  # the shared feed's 100 would refuse it

    assert replaced.stop_price == D(60)


# --- Cancel racing a fill ---------------------------------------------------------------------------------


def test_a_cancel_that_arrived_while_the_order_was_open_loses_to_a_fill_that_completed_it() -> None:
    who = trader()
    order = place(who, orderType="limit", limitPrice=100.0)
    ticket = services.order_cancel_arrive(user_id=who.user_id, order_id=order.id)
    assert ticket.latency_ms == 50
    apply(who, FillIntent(order.id, D(10), D("100.00"), 1))
    with pytest.raises(ProtocolError) as error:
        services.order_cancel(user_id=who.user_id, order_id=order.id, raced=True)
    assert error.value.code == MarketCode.CANCEL_TOO_LATE


def test_a_cancel_after_a_partial_fill_cancels_the_rest() -> None:
    who = trader()
    order = place(who, orderType="limit", limitPrice=100.0)
    services.order_cancel_arrive(user_id=who.user_id, order_id=order.id)
    apply(who, FillIntent(order.id, D(4), D("100.00"), 1))
    canceled = services.order_cancel(user_id=who.user_id, order_id=order.id, raced=True)
    assert canceled.status == OrderStatus.CANCELED and canceled.filled_qty == D(4)


# --- Fees -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "factor"), [("ideal", 0), ("realistic", 1), ("harsh", 2)])
def test_a_commission_per_share_with_a_minimum_is_charged_once_per_order_times_the_profiles_factor(
    profile: str, factor: int
) -> None:
    who = trader(profile)
    services.account_for(who.user_id)
    Account.objects.filter(user_id=who.user_id).update(commission_per_share=D("0.01"), commission_minimum=D("1"))
    order = place(who, quantity=300.0)
    apply(who, FillIntent(order.id, D(10), D("100.00"), 1))  # 0.10 per share, the minimum applies: 1
    apply(who, FillIntent(order.id, D(290), D("100.00"), 2))  # 3.00 in all: 2 more
    fees = list(Fill.objects.filter(order=order).order_by("tick_seq").values_list("fee", flat=True))
    assert fees == [D(1) * factor, D(2) * factor]
    account = Account.objects.get(user_id=who.user_id)
    assert account.fees_paid == 3 * factor and account.cash == 100_000 - 30_000 - 3 * factor
    assert Position.objects.get(user_id=who.user_id).realized_pnl == -3 * factor
    snapshot = exchange_data_status(user_id=who.user_id, reason="request")
    assert snapshot.account.feesPaid == 3 * factor and snapshot.userOrders[str(order.id)].fee == 3 * factor
    assert snapshot.profile == profile


@override_settings(MARKET_COMMISSION_PER_SHARE=D(0), MARKET_COMMISSION_MINIMUM=D(0), MARKET_COMMISSION_BPS=D("10"))
def test_the_settings_schedule_applies_to_accounts_without_their_own() -> None:
    who = trader()
    order = place(who, quantity=10.0)
    apply(who, FillIntent(order.id, D(10), D("100.00"), 1))
    assert Fill.objects.get(order=order).fee == D("1.00000000")  # 10 bps of 1,000


def test_order_ids_are_uuids() -> None:
    assert isinstance(place(trader()).id, uuid.UUID)


# --- Conservation through the services -------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 40), st.integers(9_000, 11_000)),
        min_size=1,
        max_size=6,
    ),
    per_share=st.sampled_from(["0", "0.01", "0.05"]),
    minimum=st.sampled_from(["0", "1"]),
    profile=st.sampled_from(["ideal", "realistic", "harsh"]),
)
def test_every_fill_keeps_cash_plus_position_value_net_of_its_fee(
    steps: list[tuple[str, int, int]], per_share: str, minimum: str, profile: str
) -> None:
    who = trader(profile)
    account = services.account_for(who.user_id)
    Account.objects.filter(pk=account.pk).update(commission_per_share=D(per_share), commission_minimum=D(minimum))
    for n, (side, quantity, cents) in enumerate(steps, start=1):
        held = Position.objects.filter(user_id=who.user_id).values_list("quantity", flat=True).first() or D(0)
        if side == "sell" and held < quantity:
            continue
        price = D(cents) / 100
        order = place(who, side=side, quantity=float(quantity))
        cash_before = Account.objects.get(user_id=who.user_id).cash
        apply(who, FillIntent(order.id, D(quantity), price, n))
        fill = Fill.objects.get(order=order)
        after = Account.objects.get(user_id=who.user_id)
        held_after = Position.objects.get(user_id=who.user_id).quantity
        assert after.cash + held_after * price == cash_before + held * price - fill.fee
    account = Account.objects.get(user_id=who.user_id)
    fees = sum(Fill.objects.filter(user_id=who.user_id).values_list("fee", flat=True), D(0))
    assert account.fees_paid == fees
    if profile == "ideal":
        assert fees == 0


def test_the_default_schedule_charges_half_a_cent_a_share_and_at_least_one() -> None:
    who = trader()
    small = place(who, quantity=10.0)
    apply(who, FillIntent(small.id, D(10), D("100.00"), 1))
    large = place(who, quantity=500.0)
    apply(who, FillIntent(large.id, D(500), D("100.00"), 2))
    assert Fill.objects.get(order=small).fee == D(1)  # 10 x 0.005 = 0.05, below the minimum
    assert Fill.objects.get(order=large).fee == D("2.5")  # 500 x 0.005
