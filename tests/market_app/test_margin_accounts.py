"""Margin accounts (market_app.margin, the margin parts of market_app.services): short selling, buying on
margin within the buying power, the requirements a snapshot shows, one scenario checked to the cent
against hand-computed figures, and the rule that no order is taken beyond the buying power."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market_app import journal, margin, performance, services
from market_app.accounting import FillIntent
from market_app.errors import MarketCode
from market_app.margin import Holding, Opening, Rates
from market_app.messages import OrderAmendment
from market_app.models import Account, AccountCharge, EquitySample, Instrument, MarginCall, Order, Position
from market_app.prices import Quote
from market_app.snapshots import exchange_data_status
from sessions_app.realtime.errors import ProtocolError
from simulator_app.models import Simulator
from tests.market_app.test_account_journal import body_json, csv_rows
from tests.market_app.test_accounts import client_of, open_account, start
from tests.market_app.test_trading_services import Trader, apply, place, set_prices
from tests.support.factories import make_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal
REG_T = Rates(initial=D("0.5"), maintenance_long=D("0.25"), maintenance_short=D("0.3"))


def margin_trader(cash: float = 10_000.0) -> Trader:
    session = make_session()
    account = open_account(session.user_id, "Margin", startingCash=cash, accountType="margin")
    return start(session, account.pk)


def trade(who: Trader, side: str, symbol: str, quantity: int, price: str, tick_seq: int) -> Order:
    order = place(who.user_id, symbol=symbol, side=side, quantity=quantity)
    assert apply(who, FillIntent(order.id, D(quantity), D(price), tick_seq)) is not None
    return order


def refused(who: Trader, code: str, **ticket: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as error:
        place(who.user_id, **ticket)
    assert error.value.code == code
    return error.value


def account_figures(who: Trader) -> dict[str, float | None]:
    account = exchange_data_status(user_id=who.user_id, reason="request").account
    names = ("cash", "equity", "buyingPower", "initialMargin", "maintenanceMargin", "marginExcess")
    return {name: getattr(account, name) for name in names}


# --- The requirements, pure -------------------------------------------------------------------------


def test_the_requirements_of_a_long_and_a_short_are_regulation_ts() -> None:
    figures = margin.figures(
        cash=D(-1_000),
        holdings=[Holding(D(150), D(100), REG_T), Holding(D(-20), D(200), REG_T)],
        openings=[Opening(D(10), D(50), REG_T)],
        default_initial=D("0.5"),
    )
    assert figures.equity == D(10_000)  # -1,000 + 15,000 - 4,000
    assert figures.initial_margin == D(9_750)  # (15,000 + 4,000 + 500) x 50 %
    assert figures.maintenance_margin == D(4_950)  # 15,000 x 25 % + 4,000 x 30 %
    assert figures.margin_excess == D(5_050)
    assert figures.buying_power == D(500)  # (10,000 - 9,750) / 50 %


@pytest.mark.parametrize(
    ("side", "quantity", "held", "opening"),
    [
        ("buy", 10, 0, 10),
        ("buy", 10, -4, 6),
        ("buy", 3, -4, 0),
        ("sell", 10, 4, 6),
        ("sell", 3, 4, 0),
        ("sell", 5, -2, 5),
    ],
)
def test_only_what_an_order_would_open_needs_margin(side: str, quantity: int, held: int, opening: int) -> None:
    assert margin.opening_quantity(side=side, quantity=D(quantity), held=D(held)) == D(opening)


# --- Short selling ---------------------------------------------------------------------------------


def test_a_margin_account_sells_short_and_the_proceeds_go_to_its_cash() -> None:
    who = margin_trader()
    set_prices({"MSFT": "200"})
    trade(who, "sell", "MSFT", 20, "200", 1)
    position = Position.objects.get(instrument__symbol="MSFT")
    assert (position.quantity, position.average_price) == (D(-20), D(200))
    assert services.account_for(who.user_id).cash == D(14_000)
    snapshot = exchange_data_status(user_id=who.user_id, reason="request")
    assert snapshot.userPositions["MSFT"].quantity == -20 and snapshot.userPositions["MSFT"].value == -4_000
    assert snapshot.account.accountType == "margin" and snapshot.account.equity == 10_000


def test_a_cash_account_does_not_sell_short() -> None:
    session = make_session()
    who = start(session)
    set_prices({"MSFT": "200"})
    refused(who, MarketCode.INSUFFICIENT_POSITION, symbol="MSFT", side="sell", quantity=1)
    assert not Order.objects.exists()


def test_an_instrument_that_is_not_shortable_is_only_sold_as_far_as_it_is_held() -> None:
    who = margin_trader()
    set_prices({"MSFT": "200"})
    Instrument.objects.filter(symbol="MSFT").update(shortable=False)
    trade(who, "buy", "MSFT", 5, "200", 1)
    error = refused(who, MarketCode.NOT_SHORTABLE, symbol="MSFT", side="sell", quantity=6)
    assert [d.field for d in error.details] == ["quantity"]
    trade(who, "sell", "MSFT", 5, "200", 2)  # what it holds: taken
    assert Position.objects.get(instrument__symbol="MSFT").quantity == 0


# --- Buying power, to the cent ----------------------------------------------------------------------


def test_the_scenario_s_figures_are_the_hand_computed_ones() -> None:
    who = margin_trader(10_000)
    set_prices({"AAPL": "100", "MSFT": "200"})
    assert account_figures(who) == {
        "cash": 10_000,
        "equity": 10_000,
        "buyingPower": 20_000,
        "initialMargin": 0,
        "maintenanceMargin": 0,
        "marginExcess": 10_000,
    }
    trade(who, "buy", "AAPL", 150, "100", 1)  # 15,000 on 10,000 of cash: 5,000 borrowed
    assert account_figures(who) == {
        "cash": -5_000,
        "equity": 10_000,
        "buyingPower": 5_000,  # (10,000 - 7,500) / 50 %
        "initialMargin": 7_500,
        "maintenanceMargin": 3_750,
        "marginExcess": 6_250,
    }
    error = refused(who, MarketCode.INSUFFICIENT_BUYING_POWER, symbol="MSFT", side="sell", quantity=30)
    assert "needs 3000" in error.message and "2500 is free" in error.message  # 6,000 x 50 % against 2,500
    trade(who, "sell", "MSFT", 20, "200", 2)
    assert account_figures(who) == {
        "cash": -1_000,
        "equity": 10_000,
        "buyingPower": 1_000,
        "initialMargin": 9_500,
        "maintenanceMargin": 4_950,  # 15,000 x 25 % + 4,000 x 30 %
        "marginExcess": 5_050,
    }
    set_prices({"AAPL": "90", "MSFT": "210"}, seq=3)
    assert account_figures(who) == {
        "cash": -1_000,
        "equity": 8_300,  # -1,000 + 13,500 - 4,200
        "buyingPower": 0,
        "initialMargin": 8_850,
        "maintenanceMargin": 4_635,  # 13,500 x 25 % + 4,200 x 30 %
        "marginExcess": 3_665,
    }
    refused(who, MarketCode.INSUFFICIENT_BUYING_POWER, symbol="AAPL", side="buy", quantity=1)
    trade(who, "buy", "MSFT", 20, "210", 4)  # covering needs no margin: (200 - 210) x 20 realized
    assert Position.objects.get(instrument__symbol="MSFT").realized_pnl == D(-200)
    assert account_figures(who) == {
        "cash": -5_200,
        "equity": 8_300,
        "buyingPower": 3_100,  # (8,300 - 6,750) / 50 %
        "initialMargin": 6_750,
        "maintenanceMargin": 3_375,
        "marginExcess": 4_925,
    }


def test_a_refused_order_records_nothing_and_closing_is_never_refused() -> None:
    who = margin_trader(1_000)
    set_prices({"AAPL": "100"})
    trade(who, "buy", "AAPL", 20, "100", 1)  # the whole buying power
    refused(who, MarketCode.INSUFFICIENT_BUYING_POWER, symbol="AAPL", side="buy", quantity=1)
    assert Order.objects.count() == 1
    set_prices({"AAPL": "60"}, seq=2)  # equity 200, below its maintenance: only closing
    closing = place(who.user_id, symbol="AAPL", side="sell", quantity=20)
    assert closing.pk is not None


def test_a_replace_that_grows_an_order_past_the_buying_power_is_refused() -> None:
    who = margin_trader(1_000)
    set_prices({"AAPL": "100"})
    order = place(who.user_id, symbol="AAPL", side="buy", orderType="limit", limitPrice=100.0, quantity=10)
    with pytest.raises(ProtocolError) as error:
        services.order_replace(user_id=who.user_id, order_id=order.pk, amendment=OrderAmendment(quantity=25))
    assert error.value.code == MarketCode.INSUFFICIENT_BUYING_POWER
    grown = services.order_replace(user_id=who.user_id, order_id=order.pk, amendment=OrderAmendment(quantity=20))
    assert grown.quantity == D(20)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    orders=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.sampled_from(["AAPL", "MSFT"]), st.integers(1, 120)),
        min_size=1,
        max_size=8,
    ),
    moves=st.lists(st.sampled_from(["90", "100", "110"]), min_size=8, max_size=8),
)
def test_no_order_is_taken_beyond_the_buying_power(orders: list[tuple[str, str, int]], moves: list[str]) -> None:
    """Whatever the orders and prices: each order taken (and filled at once) leaves the initial margin
    within the equity, unless it only closed; a refused one is `insufficient_buying_power`."""
    who = margin_trader(5_000)
    for seq, ((side, symbol, quantity), price) in enumerate(zip(orders, moves, strict=False), start=1):
        set_prices({"AAPL": price, "MSFT": str(D(price) * 2)}, seq=seq)
        held = (
            Position.objects.filter(user_id=who.user_id, instrument__symbol=symbol)
            .values_list("quantity", flat=True)
            .first()
        ) or D(0)
        opening = margin.opening_quantity(side=side, quantity=D(quantity), held=held)
        try:
            trade(who, side, symbol, quantity, price if symbol == "AAPL" else str(D(price) * 2), seq)
        except ProtocolError as error:
            short_too_early = side == "sell" and error.code == MarketCode.SHORT_EQUITY_TOO_LOW
            assert (error.code == MarketCode.INSUFFICIENT_BUYING_POWER or short_too_early) and opening > 0
            continue
        figures = account_figures(who)
        if opening > 0:
            assert figures["initialMargin"] <= figures["equity"]


def test_the_figures_count_a_shorts_profit_and_its_round_trip() -> None:
    who = margin_trader()
    set_prices({"MSFT": "200"})
    trade(who, "sell", "MSFT", 20, "200", 1)
    trade(who, "buy", "MSFT", 5, "190", 2)
    set_prices({"MSFT": "180"}, seq=3)
    account = services.account_for(who.user_id)
    window = journal.default_window(account_id=account.pk, start=None, end=None)
    figures = performance.account_performance(account_id=account.pk, window=window)
    assert figures.realized_pnl == D(50)  # (200 - 190) x 5
    assert figures.unrealized_pnl == D(300)  # (200 - 180) x 15 still short
    assert figures.round_trips == 0
    trade(who, "buy", "MSFT", 15, "180", 4)
    window = journal.default_window(account_id=account.pk, start=None, end=None)
    figures = performance.account_performance(account_id=account.pk, window=window)
    assert (figures.realized_pnl, figures.round_trips, figures.won) == (D(350), 1, 1)


def test_an_equity_sample_counts_a_short_below_zero() -> None:
    who = margin_trader()
    set_prices({"MSFT": "200"})
    trade(who, "sell", "MSFT", 20, "200", 1)
    quotes = {"MSFT": Quote(price=D(250), open=D(250), volume=1)}
    services.equity_samples_record(user_ids=[who.user_id], quotes=quotes, tick_seq=2, at=timezone.now())
    sample = EquitySample.objects.get()
    assert (sample.cash, sample.positions_value, sample.equity) == (D(14_000), D(-5_000), D(9_000))


# --- Margin calls --------------------------------------------------------------------------------


def called_account(who: Trader) -> None:
    """150 AAPL bought at 100 and 20 MSFT short at 200 on 10,000, then AAPL at 50: equity 2,500 under a
    maintenance margin of 3,075 (50 x 150 x 25 % + 200 x 20 x 30 %)."""
    set_prices({"AAPL": "100", "MSFT": "200"})
    trade(who, "buy", "AAPL", 150, "100", 1)
    trade(who, "sell", "MSFT", 20, "200", 2)
    place(who.user_id, symbol="MSFT", side="buy", orderType="limit", limitPrice=150.0, quantity=1)


def watch(who: Trader, aapl: str, at: datetime) -> list[int]:
    quotes = {
        "AAPL": Quote(price=D(aapl), open=D(aapl), volume=1),
        "MSFT": Quote(price=D(200), open=D(200), volume=1),
    }
    return services.margin_calls_watch(user_ids=[who.user_id], quotes=quotes, at=at)


START = datetime(2026, 12, 8, 14, 30, tzinfo=UTC)


def test_a_margin_call_is_issued_below_the_maintenance_margin_and_met_when_the_equity_recovers() -> None:
    who = margin_trader(10_000)
    called_account(who)
    assert watch(who, "90", START) == [] and not MarginCall.objects.exists()  # above it: nothing
    watch(who, "50", START)
    call = MarginCall.objects.get()
    assert (call.status, call.equity, call.maintenance_margin) == ("open", D(2_500), D(3_075))
    assert call.due_at == START + timedelta(seconds=900)
    watch(who, "50", START + timedelta(seconds=60))
    assert MarginCall.objects.count() == 1  # one open call, not a second
    watch(who, "80", START + timedelta(seconds=120))
    call.refresh_from_db()
    assert (call.status, call.closed_at) == ("met", START + timedelta(seconds=120))
    assert not Order.objects.filter(liquidation=True).exists()


def test_a_margin_call_not_met_in_time_liquidates_the_largest_requirement_first() -> None:
    who = margin_trader(10_000)
    called_account(who)
    watch(who, "50", START)
    assert watch(who, "50", START + timedelta(seconds=899)) == []  # not due yet
    account = services.account_for(who.user_id)
    assert watch(who, "50", START + timedelta(seconds=900)) == [account.pk]
    assert MarginCall.objects.get().status == "liquidated"
    # AAPL's 1,875 goes first; MSFT's 1,200 left is within the 2,500 of equity: it stays.
    liquidation = Order.objects.get(liquidation=True)
    assert (liquidation.instrument.symbol, liquidation.side, liquidation.order_type, liquidation.quantity) == (
        "AAPL",
        "sell",
        "market",
        D(150),
    )
    assert liquidation.reason == services.LIQUIDATION_REASON
    resting = Order.objects.get(order_type="limit")
    assert (resting.status, resting.reason) == ("canceled", services.LIQUIDATION_REASON)
    apply(who, FillIntent(liquidation.id, D(150), D(50), 3))
    snapshot = exchange_data_status(user_id=who.user_id, reason="request")
    assert snapshot.userOrders[str(liquidation.id)].liquidation is True
    assert snapshot.account.marginExcess > 0


def test_a_liquidation_waits_for_a_running_simulator() -> None:
    who = margin_trader(10_000)
    called_account(who)
    watch(who, "50", START)
    Simulator.objects.filter(pk=who.simulator_id).update(status="stopped")
    assert watch(who, "50", START + timedelta(seconds=1_000)) == []
    assert MarginCall.objects.get().status == "open" and not Order.objects.filter(liquidation=True).exists()


def test_a_cash_account_gets_no_margin_call() -> None:
    session = make_session()
    who = start(session)
    set_prices({"AAPL": "100"})
    trade(who, "buy", "AAPL", 900, "100", 1)
    assert watch(who, "1", START) == [] and not MarginCall.objects.exists()


# --- Borrow fees and margin interest -----------------------------------------------------------------


@override_settings(MARKET_BORROW_RATE=D("0.036"), MARKET_MARGIN_INTEREST_RATE=D("0.072"))
def test_each_market_day_charges_the_shorts_borrow_fee_and_the_interest_on_borrowed_cash() -> None:
    who = margin_trader(10_000)
    set_prices({"AAPL": "100", "MSFT": "200"})
    trade(who, "buy", "AAPL", 130, "100", 1)  # 13,000 on 10,000: 3,000 borrowed
    trade(who, "sell", "MSFT", 10, "200", 2)  # 2,000 short: the cash is -1,000 now
    quotes = {"AAPL": Quote(price=D(100), open=D(100), volume=1), "MSFT": Quote(price=D(250), open=D(250), volume=1)}

    def charge(day: str) -> int:
        return services.margin_accruals_charge(user_ids=[who.user_id], quotes=quotes, day=day, at=timezone.now())

    assert charge("feed:1") == 0  # the first sample starts the count
    assert charge("feed:1") == 0  # the same day: nothing more
    assert charge("feed:2") == 2
    fee, interest = AccountCharge.objects.order_by("kind")
    # 10 x 250 x 3.6 % / 360 and 1,000 x 7.2 % / 360, for the day that ended.
    assert (fee.kind, fee.day, fee.amount, fee.details) == ("borrow_fee", "feed:1", D("0.25"), {"MSFT": "2500"})
    assert (interest.kind, interest.day, interest.amount) == ("margin_interest", "feed:1", D("0.2"))
    assert services.account_for(who.user_id).cash == D("-1000.45")
    assert charge("feed:2") == 0
    account = services.account_for(who.user_id)
    window = journal.default_window(account_id=account.pk, start=None, end=None)
    figures = performance.account_performance(account_id=account.pk, window=window)
    assert figures.charges == D("0.45") and figures.net_pnl == figures.realized_pnl + figures.unrealized_pnl - D("0.45")
    client = client_of(who.user_id)
    listed = body_json(client.get("/api/market/journal/charges/"))
    assert [(c["kind"], c["amount"], c["day"]) for c in listed] == [
        ("borrow_fee", 0.25, "feed:1"),
        ("margin_interest", 0.2, "feed:1"),
    ]
    rows = csv_rows(client.get("/api/market/journal/charges/?format=csv"))
    assert [(r["kind"], r["amount"], r["details"]) for r in rows] == [
        ("borrow_fee", "0.25", "MSFT=2500"),
        ("margin_interest", "0.2", "borrowed=1000"),
    ]


def test_a_cash_account_is_never_charged() -> None:
    session = make_session()
    who = start(session)
    set_prices({"AAPL": "100"})
    trade(who, "buy", "AAPL", 10, "100", 1)
    for day in ("feed:1", "feed:2", "feed:3"):
        services.margin_accruals_charge(user_ids=[who.user_id], quotes={}, day=day, at=START)
    assert not AccountCharge.objects.exists()


def test_risk_limits_count_a_short_as_exposure() -> None:
    who = margin_trader(10_000)
    set_prices({"MSFT": "200"})
    account = services.account_for(who.user_id)
    account.max_position_value, account.max_leverage = D(3_000), D(1)
    account.save()
    refused(who, MarketCode.POSITION_VALUE_LIMIT, symbol="MSFT", side="sell", quantity=20)  # 4,000 short
    trade(who, "sell", "MSFT", 10, "200", 1)  # 2,000: within both
    set_prices({"AAPL": "100", "MSFT": "200"}, seq=2)
    Account.objects.filter(pk=account.pk).update(max_position_value=None)
    # Equity 10,000 with a 2,000 short: a 9,000 buy makes 11,000 of positions, above 1x.
    refused(who, MarketCode.LEVERAGE_LIMIT, symbol="AAPL", side="buy", quantity=90)
    place(who.user_id, symbol="AAPL", side="buy", quantity=70)


def test_a_short_needs_the_minimum_equity() -> None:
    who = margin_trader(1_999)
    set_prices({"MSFT": "10"})
    error = refused(who, MarketCode.SHORT_EQUITY_TOO_LOW, symbol="MSFT", side="sell", quantity=1)
    assert "2000" in error.message and "1999" in error.message
    trade(who, "buy", "MSFT", 10, "10", 1)
    trade(who, "sell", "MSFT", 10, "10", 2)  # closing a long is no short: taken
    assert not Order.objects.filter(status="new").exists()
