"""The feed's producer computes every profile's book, the open candles and the tick's trade once per
tick: the tick carries them, the feed row keeps the top of book for snapshots, closed bars are stored
and pruned, and a connection's view of a tick picks its profile, symbols, depth, candles and trades."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from market_app import selectors, services
from market_app.candles import RETENTION_MS
from market_app.feed import FeedProducer
from market_app.groups import ticks_group
from market_app.liquidity import DEFAULT_LIQUIDITY, Book, book_of
from market_app.marketdata import (
    MarketDataBuilder,
    Tape,
    books_of_event,
    candles_of_event,
    replay_tick_size,
    top_to_wire,
    tops_of,
)
from market_app.models import Candle, Instrument
from market_app.price_stream import TickView, encoder, tick_parts
from market_app.prices import Quote
from market_app.realism import ProfileName, realism_of
from market_app.snapshots import exchange_data_status
from tests.support.factories import make_user, make_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]


def quotes(price: str = "190.00", volume: int = 100) -> dict[str, Quote]:
    return {
        "AAPL": Quote(Decimal(price), Decimal("189.00"), volume),
        "REPLAYED": Quote(Decimal("12.345"), Decimal(12), 9),
    }


def builder() -> MarketDataBuilder:
    return MarketDataBuilder(selectors.liquidity_of_instruments(selectors.active_instruments()), seed=3)


def test_the_seeded_instruments_have_their_own_liquidity_settings() -> None:
    liquidity = selectors.liquidity_of_instruments(selectors.active_instruments())
    assert len(liquidity) == 8
    assert liquidity["BTC-USD"].params.lot_size == Decimal("0.001")
    assert liquidity["SPY"].params.spread_bps < liquidity["TSLA"].params.spread_bps
    assert liquidity["AAPL"].params != DEFAULT_LIQUIDITY


def test_an_instrument_with_invalid_liquidity_settings_trades_with_the_defaults() -> None:
    Instrument.objects.filter(symbol="AAPL").update(book_levels=0)
    liquidity = selectors.liquidity_of_instruments(selectors.active_instruments())
    assert "AAPL" not in liquidity and "MSFT" in liquidity
    data = MarketDataBuilder(liquidity, seed=3).tick(seq=1, timestamp=1_000, quotes=quotes())
    assert len(data.books["realistic"]["AAPL"]["bids"]) == DEFAULT_LIQUIDITY.depth_levels


def test_a_tick_carries_the_book_of_every_profile_as_book_of_computes_it() -> None:
    data = builder().tick(seq=4, timestamp=1_000, quotes=quotes())
    apple = selectors.liquidity_of_instruments(selectors.active_instruments())["AAPL"]
    for profile in ProfileName:
        expected = book_of(
            price=Decimal("190.00"),
            tick_size=apple.tick_size,
            params=apple.params,
            realism=realism_of(profile),
            seed=3,
            seq=4,
            symbol="AAPL",
            volume=100,
        )
        assert Book.from_wire(data.books[profile]["AAPL"]) == expected
        assert top_to_wire(data.books[profile]["AAPL"]) == expected.top_to_wire()


def test_a_replayed_symbol_without_an_instrument_gets_the_default_book_on_its_quote_tick() -> None:
    assert replay_tick_size(Decimal("12.345")) == Decimal("0.001")
    assert replay_tick_size(Decimal("190")) == Decimal("0.01")
    data = builder().tick(seq=1, timestamp=1_000, quotes=quotes())
    replayed = Book.from_wire(data.books["realistic"]["REPLAYED"])
    assert len(replayed.asks) == DEFAULT_LIQUIDITY.depth_levels
    assert all(level.price % Decimal("0.001") == 0 for level in replayed.bids + replayed.asks)


def test_advancing_the_feed_keeps_the_top_of_book_stores_closed_bars_and_publishes_books_and_candles() -> None:
    worker = make_worker()
    claim = services.feed_claim(worker_id=worker)
    assert claim is not None
    market = builder()
    first = market.tick(seq=1, timestamp=10_100, quotes=quotes("190.00", 100))
    assert services.feed_advance(worker_id=worker, epoch=claim.epoch, seq=1, quotes=quotes(), market=first)
    second = market.tick(seq=2, timestamp=11_300, quotes=quotes("190.50", 40))
    assert services.feed_advance(worker_id=worker, epoch=claim.epoch, seq=2, quotes=quotes("190.50"), market=second)

    stored = Candle.objects.get(symbol="AAPL", interval="1s")
    assert (stored.start_ms, stored.open, stored.close, stored.volume) == (
        10_000,
        Decimal("190.00"),
        Decimal("190.00"),
        100,
    )
    assert not Candle.objects.filter(interval="1m").exists()  # still open
    assert second.candles["AAPL"]["1m"]["volume"] == 140


@override_settings(MARKET_TICK_MS=20, SIMULATOR_LEASE_TTL_MS=2000)
async def test_the_producers_ticks_carry_books_and_open_candles() -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(ticks_group(), listener)
    producer = FeedProducer(await database_sync_to_async(make_worker)())
    await producer.maintain()
    try:
        ticks = [await asyncio.wait_for(layer.receive(listener), 2) for _ in range(3)]
    finally:
        await producer.stop(release=True)
    symbols = set(ticks[-1]["symbols"])
    books, candles = books_of_event(ticks[-1]), candles_of_event(ticks[-1])
    assert set(books) == {"ideal", "realistic", "harsh"}
    assert set(books["realistic"]) == symbols == set(candles)
    book = Book.from_wire(books["realistic"]["AAPL"])
    assert book.bid is not None and book.ask is not None and book.bid < book.ask


def test_bars_older_than_their_retention_are_pruned() -> None:
    now = 1_000 * 86_400_000
    for interval, keep in RETENTION_MS.items():
        for start in (now - keep - 1_000, now - keep + 60_000):
            Candle.objects.create(
                symbol="AAPL", interval=interval, start_ms=start, open=1, high=1, low=1, close=1, volume=1
            )
    assert services.candles_prune(now=now) == 3
    assert sorted(Candle.objects.values_list("interval", flat=True)) == ["1m", "1s", "5m"]


def test_a_snapshot_quotes_the_top_of_book_of_the_users_profile() -> None:
    worker = make_worker()
    claim = services.feed_claim(worker_id=worker)
    assert claim is not None
    liquidity = selectors.liquidity_of_instruments(selectors.active_instruments())
    data = MarketDataBuilder(liquidity, seed=claim.seed).tick(seq=1, timestamp=1_000, quotes=quotes())
    services.feed_advance(worker_id=worker, epoch=claim.epoch, seq=1, quotes=quotes(), market=data)
    status = exchange_data_status(user_id=make_user().pk, reason="request")
    apple = status.symbols["AAPL"]
    top = top_to_wire(data.books["realistic"]["AAPL"])
    assert (apple.bid, apple.ask, apple.bidSize, apple.askSize) == (
        top["bid"],
        top["ask"],
        top["bidSize"],
        top["askSize"],
    )
    assert apple.price == 190.0


def test_the_top_of_book_recomputed_for_a_snapshot_is_the_ticks_first_level() -> None:
    liquidity = selectors.liquidity_of_instruments(selectors.active_instruments())
    for seq in range(1, 20):
        data = MarketDataBuilder(liquidity, seed=3).tick(seq=seq, timestamp=1_000, quotes=quotes())
        for profile in ProfileName:
            tops = tops_of(quotes(), liquidity, seed=3, seq=seq, profile=profile)
            assert tops == {symbol: top_to_wire(book) for symbol, book in data.books[profile].items()}


def test_a_snapshot_of_a_feed_without_books_keeps_the_specs_shape() -> None:
    status = exchange_data_status(user_id=make_user().pk, reason="request")
    wire = status.to_dict()
    assert all(set(quote) == {"price", "change", "volume"} for quote in wire["symbols"].values())


def event_of(data, seq: int = 1) -> dict:
    return {
        "type": "market.tick",
        "seq": seq,
        "timestamp": data.timestamp,
        "symbols": {s: q.to_wire() for s, q in quotes().items()},
        "tops": data.tops_text(),
        "books": data.books_text(),
        "candles": data.candles_text(),
    }


def test_a_view_adds_its_profiles_top_of_book_and_only_what_it_asked_for() -> None:
    data = builder().tick(seq=1, timestamp=1_000, quotes=quotes())
    event = event_of(data)
    plain = tick_parts(event, TickView(selection=frozenset({"AAPL"})))
    assert set(plain.symbols) == {"AAPL"} and plain.depth is None and plain.candles is None
    assert plain.symbols["AAPL"] == quotes()["AAPL"].to_wire() | top_to_wire(data.books["realistic"]["AAPL"])

    harsh = tick_parts(event, TickView(profile=ProfileName.HARSH, depth=3, candles=("1m",)))
    assert harsh.symbols["AAPL"]["bid"] == data.books["harsh"]["AAPL"]["bids"][0][0]
    assert harsh.depth is not None and harsh.depth["AAPL"]["asks"] == data.books["harsh"]["AAPL"]["asks"][:3]
    assert harsh.candles is not None and set(harsh.candles["AAPL"]) == {"1m"}

    ideal = tick_parts(event, TickView(profile=ProfileName.IDEAL))
    assert ideal.symbols["AAPL"]["bid"] == ideal.symbols["AAPL"]["ask"] == 190.0


def test_a_tick_without_books_is_encoded_in_the_specs_shape() -> None:
    event = {
        "type": "market.tick",
        "seq": 10**9,
        "timestamp": 1,
        "symbols": {"AAPL": {"price": 1.0, "change": 0.0, "volume": 1}},
    }
    text = encoder.encode(event, TickView(depth=5, candles=("1s",)))
    assert json.loads(text) == {
        "type": "exchange_data",
        "timestamp": 1,
        "symbols": {"AAPL": {"price": 1.0, "change": 0.0, "volume": 1}},
        "seq": 10**9,
    }


def test_the_tape_prints_each_ticks_volume_at_its_price_by_the_tick_rule() -> None:
    tape = Tape()
    quote = lambda price, volume: Quote(price=Decimal(price), open=Decimal("100"), volume=volume)  # noqa: E731
    ticks = [
        {"A": quote("100.00", 5), "B": quote("10.00", 0)},
        {"A": quote("100.10", 7), "B": quote("9.99", 3)},
        {"A": quote("100.10", 2), "B": quote("9.98", 4)},
        {"A": quote("100.05", 1), "B": quote("9.98", 6)},
        {"A": quote("100.05", 0), "B": quote("10.01", 1)},
    ]
    printed = [tape.prints(tick) for tick in ticks]
    assert printed == [
        {"A": [100.0, 5, "buy"]},  # the first tick of a symbol is a buy; no volume, no print
        {"A": [100.1, 7, "buy"], "B": [9.99, 3, "sell"]},
        {"A": [100.1, 2, "buy"], "B": [9.98, 4, "sell"]},  # an unchanged price keeps the side before
        {"A": [100.05, 1, "sell"], "B": [9.98, 6, "sell"]},
        {"B": [10.01, 1, "buy"]},
    ]


def test_a_ticks_event_carries_its_trades_and_a_trades_view_shows_the_subscribed_ones() -> None:
    event = {
        "type": "market.tick",
        "seq": 4,
        "timestamp": 8_000,
        "symbols": {"A": {"price": 100.1, "change": 0.1, "volume": 7}, "B": {"price": 9.99, "change": 0, "volume": 3}},
        "prints": json.dumps({"A": [100.1, 7, "buy"], "B": [9.99, 3, "sell"]}),
    }
    parts = tick_parts(event, TickView(selection=frozenset({"B"}), trades=True))
    assert {s: [p.model_dump() for p in prints] for s, prints in (parts.prints or {}).items()} == {
        "B": [{"price": 9.99, "size": 3, "side": "sell", "time": 8_000}]
    }
    assert tick_parts(event, TickView()).prints is None
