"""A simulator's own market, its pure parts: a bar's path (through the open orders' prices), its
volume shared along the path, a replay's bars found by time, a synthetic walk from its seed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from market_app.accounting import OpenOrder
from market_app.datasets import dataset_import
from market_app.own_market import (
    BarOrders,
    OwnBar,
    ReplayBars,
    SyntheticBars,
    bar_path,
    bars_of_market,
    path_volumes,
    trade_trigger,
)
from market_app.prices import InstrumentSpec, Quote

D = Decimal


def bar(open_: str, high: str, low: str, close: str) -> OwnBar:
    return OwnBar(D(open_), D(high), D(low), D(close), 1000)


def test_a_bar_goes_to_the_extreme_nearer_its_open_first() -> None:
    assert bar_path(bar("100", "101", "95", "99")) == (D(100), D(101), D(95), D(99))
    assert bar_path(bar("100", "105", "99", "101")) == (D(100), D(99), D(105), D(101))


def test_a_tie_goes_low_first_in_a_rising_bar_and_high_first_in_a_falling_one() -> None:
    assert bar_path(bar("100", "102", "98", "101")) == (D(100), D(98), D(102), D(101))
    assert bar_path(bar("100", "102", "98", "99")) == (D(100), D(102), D(98), D(99))


def test_a_price_repeated_at_once_is_visited_once() -> None:
    assert bar_path(bar("100", "100", "100", "100")) == (D(100),)
    assert bar_path(bar("100", "103", "100", "103")) == (D(100), D(103))


def test_the_path_passes_through_the_orders_prices_it_crosses_in_the_order_it_meets_them() -> None:
    path = bar_path(bar("100", "101", "95", "99"), through=[D("96"), D("100.5"), D("98"), D("90")])

    assert path == (D(100), D("100.5"), D(101), D("100.5"), D(98), D(96), D(95), D(96), D(98), D(99))


def test_a_gap_is_not_filled_in_before_the_open() -> None:
    # A stop at 105 above a bar that opens at 95: the path never passes it.
    assert D(105) not in bar_path(bar("95", "97", "94", "96"), through=[D(105)])


@pytest.mark.parametrize(("volume", "points"), [(1000, 4), (7, 3), (0, 2), (5, 5)])
def test_a_bars_volume_is_shared_along_its_path_without_loss(volume: int, points: int) -> None:
    shares = path_volumes(volume, points)

    assert len(shares) == points and sum(shares) == volume and min(shares) >= 0


def test_a_replay_finds_the_first_bar_at_or_after_a_time() -> None:
    bars = ReplayBars([1000, 2000, 5000], [{"A": bar("1", "1", "1", "1")}] * 3)

    assert [bars.index_at_or_after(t) for t in (0, 1000, 1001, 2000, 4999, 5000, 9999)] == [0, 0, 1, 1, 2, 2, 2]
    assert bars.length == 3 and bars.time_at(2) == 5000


def test_a_synthetic_walk_is_the_same_from_the_same_seed_and_differs_from_another() -> None:
    spec = InstrumentSpec("AAA", D("0.01"), D(100), 0.3, 0.05, 1000)

    def walk(seed: int) -> list[Decimal]:
        bars = SyntheticBars((spec,), seed=seed, start_ms=0)
        quotes: dict = {}
        prices = []
        for index in range(30):
            step = bars.bars_at(index, quotes)
            quotes = {s: Quote(b.close, D(100), b.volume) for s, b in step.items()}
            prices.append(step["AAA"].close)
        return prices

    assert walk(7) == walk(7)
    assert walk(7) != walk(8)
    assert SyntheticBars((spec,), seed=1, start_ms=500).index_at_or_after(500) == 0


def order(kind: str, side: str, **fields: object) -> OpenOrder:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "symbol": "AAA",
        "side": side,
        "order_type": kind,
        "quantity": D(1),
        "filled_qty": D(0),
        "limit_price": None,
    }
    return OpenOrder(**(base | fields))  # type: ignore[arg-type]


BAR = bar("100", "104", "97", "102")


def may_trade(order: OpenOrder, bar: OwnBar | None) -> bool:
    """Can the bar change the order at all? Asked of one order at a time: the reference BarOrders'
    index by trigger price must agree with."""
    if bar is None:
        return False
    trigger = trade_trigger(order)
    if trigger is None:
        return True
    side, price = trigger
    return bar.high >= price if side == "high" else bar.low <= price


@pytest.mark.parametrize(
    ("an_order", "trades"),
    [
        (order("market", "buy"), True),
        (order("trailing_stop", "sell", trail_amount=D(5)), True),
        (order("limit", "buy", limit_price=D(90)), True),  # new to the book: it joins the queue
        (order("limit", "buy", limit_price=D(90), queue_ahead=D(10)), False),  # queued below the bar's low
        (order("limit", "buy", limit_price=D(97), queue_ahead=D(10)), True),  # the low reaches it
        (order("limit", "sell", limit_price=D(105), queue_ahead=D(0)), False),
        (order("limit", "sell", limit_price=D(104), queue_ahead=D(0)), True),
        (order("stop", "sell", stop_price=D(96)), False),
        (order("stop", "sell", stop_price=D(97)), True),
        (order("stop_limit", "buy", stop_price=D(105), limit_price=D(106)), False),
        (order("stop_limit", "buy", stop_price=D(104), limit_price=D(106)), True),
        (order("stop", "buy", stop_price=D(110), triggered=True), True),  # triggered: a market order now
    ],
)
def test_an_order_the_bar_cannot_change_is_left_out_of_its_matching(an_order: OpenOrder, trades: bool) -> None:
    assert may_trade(an_order, BAR) is trades
    assert may_trade(an_order, None) is False  # no bar of its symbol at this time


PRICES = st.integers(90, 110).map(D)
ORDERS = st.builds(
    lambda kind, side, symbol, limit, stop, queued, triggered: order(
        kind,
        side,
        symbol=symbol,
        limit_price=limit if kind in ("limit", "stop_limit") else None,
        stop_price=stop if kind in ("stop", "stop_limit") else None,
        queue_ahead=D(5) if queued else None,
        triggered=triggered,
        trail_amount=D(3) if kind == "trailing_stop" else None,
    ),
    st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["AAA", "BBB", "CCC"]),
    PRICES,
    PRICES,
    st.booleans(),
    st.booleans(),
)
BARS = st.dictionaries(
    st.sampled_from(["AAA", "BBB"]),
    st.tuples(PRICES, PRICES).map(lambda ends: OwnBar(min(ends), max(ends), min(ends), max(ends), 100)),
)


@settings(max_examples=300, deadline=None)
@given(orders=st.lists(ORDERS, max_size=12), bars=BARS, data=st.data())
def test_the_orders_a_bar_finds_by_their_prices_are_the_ones_may_trade_names_in_their_order(
    orders: list[OpenOrder], bars: dict[str, OwnBar], data: st.DataObject
) -> None:
    ended = {o.id for o in data.draw(st.lists(st.sampled_from(orders), max_size=3) if orders else st.just([]))}
    found = BarOrders(orders).tradable(bars, ended)
    assert [o.id for o in found] == [o.id for o in orders if o.id not in ended and may_trade(o, bars.get(o.symbol))]
    assert all(o.active_at_ms == 0 and o.expires_seq is None for o in found)  # as a bar trades them


# --- Replays sharing their bars --------------------------------------------------------------------------

MINUTES = "timestamp,symbol,open,high,low,close,volume\n" + "".join(
    f"2026-01-05T14:{minute:02d}:00Z,ABC,10.{minute:02d},10.{minute:02d},10.{minute:02d},10.{minute:02d},100\n"
    for minute in range(30, 40)
)


def replay_of(dataset_id: int, start_minute: int, end_minute: int) -> dict[str, object]:
    def at(minute: int) -> int:
        return int(datetime(2026, 1, 5, 14, minute, tzinfo=UTC).timestamp() * 1000)

    return {
        "source": "replay",
        "datasetId": dataset_id,
        "symbols": ["ABC"],
        "start": at(start_minute),
        "end": at(end_minute),
    }


@pytest.mark.django_db
def test_replays_of_one_range_share_its_bars_read_once_and_another_range_reads_its_own() -> None:
    dataset = dataset_import(owner_id=None, name="minutes", content=MINUTES)
    first = bars_of_market(replay_of(dataset.id, 30, 39), created_ms=0)

    with CaptureQueriesContext(connection) as reads:
        again = bars_of_market(replay_of(dataset.id, 30, 39), created_ms=0)
        narrower = bars_of_market(replay_of(dataset.id, 32, 35), created_ms=0)

    assert again is first and first.length == 10
    assert narrower is not first and narrower.length == 4
    assert narrower.bars_at(0, {})["ABC"].close == Decimal("10.32")
    assert len(reads.captured_queries) == 3  # the dataset twice (which one it is), the narrower range once
