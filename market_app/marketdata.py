"""What the feed's producer adds to each tick beyond the prices: every profile's book, the open
candles and the tick's trade. Pure Python, no models: computed once per tick (not per connection or simulator), then
published with the tick by `services.feed_advance`, which stores the bars it closed.

In the tick event the tops of book, books, candles and trades travel as JSON text (`tops_of_event`,
`books_of_event`, `candles_of_event`, `prints_of_event` decode them; the tops apart, as most connections need no
more): the in-memory channel layer deep-copies every message for every receiver, and a string
copies for free where hundreds of nested lists do not.

The top of book is not stored: being seeded, it is recomputed for a snapshot (`tops_of`) from the
persisted tick (seed, seq, price, volume) and the instrument's settings, exactly as the tick had it
(unless an admin edited the settings since; the feed follows an edit within seconds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from market_app.candles import CandleBuilder, ClosedBar
from market_app.events import MarketTickEvent
from market_app.liquidity import DEFAULT_LIQUIDITY, BookInput, LiquidityParams, WireBook, wire_books_of_tick
from market_app.prices import Quote
from market_app.realism import ProfileName

WireBooks = dict[str, dict[str, WireBook]]  # profile -> symbol -> every level
WireCandles = dict[str, dict[str, dict[str, Any]]]  # symbol -> interval -> the open bar
WireTops = dict[str, dict[str, dict[str, float]]]  # profile -> symbol -> bid, bidSize, ask, askSize
WirePrints = dict[str, list[Any]]  # symbol -> [price, size, side]: the tick's trade


@dataclass(frozen=True)
class SymbolLiquidity:
    tick_size: Decimal
    params: LiquidityParams


@dataclass(frozen=True)
class TickMarketData:
    timestamp: int  # epoch ms of the tick (its candles' clock)
    books: WireBooks
    candles: WireCandles
    closed: list[ClosedBar] = field(default_factory=list)
    prints: WirePrints = field(default_factory=dict)

    def books_text(self) -> str:
        return json.dumps(self.books, separators=(",", ":"))

    def tops_text(self) -> str:
        tops = {profile: {s: top_to_wire(book) for s, book in per.items()} for profile, per in self.books.items()}
        return json.dumps(tops, separators=(",", ":"))

    def candles_text(self) -> str:
        return json.dumps(self.candles, separators=(",", ":"))

    def prints_text(self) -> str:
        return json.dumps(self.prints, separators=(",", ":"))


class Tape:
    """The market's trades by the tick rule: a tick with volume prints one trade of that volume at its
    price, taken by a buyer on an uptick and by a seller on a downtick; an unchanged price keeps the
    side of the tick before (the first tick is a buy)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Decimal, str]] = {}

    def prints(self, quotes: Mapping[str, Quote]) -> WirePrints:
        prints: WirePrints = {}
        for symbol, quote in quotes.items():
            last = self._last.get(symbol)
            if last is None or quote.price > last[0]:
                side = "buy"
            elif quote.price < last[0]:
                side = "sell"
            else:
                side = last[1]
            self._last[symbol] = (quote.price, side)
            if quote.volume > 0:
                prints[symbol] = [float(quote.price), quote.volume, side]
        return prints


def replay_tick_size(price: Decimal) -> Decimal:
    """A replayed bar's symbol without an instrument row: the tick its prices are quoted in (at most 0.01)."""
    exponent = price.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return Decimal(1).scaleb(-places)


def book_input(symbol: str, quote: Quote, liquidity: Mapping[str, SymbolLiquidity]) -> BookInput:
    """What the book of `symbol` is built from; a symbol without settings (replayed bars) gets the defaults."""
    known = liquidity.get(symbol)
    if known is None:
        return BookInput(quote.price, quote.volume, replay_tick_size(quote.price), DEFAULT_LIQUIDITY)
    return BookInput(quote.price, quote.volume, known.tick_size, known.params)


class MarketDataBuilder:
    def __init__(self, liquidity: Mapping[str, SymbolLiquidity], *, seed: int) -> None:
        self.liquidity = dict(liquidity)
        self.seed = seed
        self.candles = CandleBuilder()
        self.tape = Tape()

    def follow(self, liquidity: Mapping[str, SymbolLiquidity]) -> None:
        """New instrument settings (an admin edit): the open candles carry on."""
        self.liquidity = dict(liquidity)

    def tick(self, *, seq: int, timestamp: int, quotes: Mapping[str, Quote]) -> TickMarketData:
        inputs = {symbol: book_input(symbol, quote, self.liquidity) for symbol, quote in quotes.items()}
        books = wire_books_of_tick(inputs, seed=self.seed, seq=seq)
        closed = self.candles.add_tick(timestamp, quotes)
        return TickMarketData(
            timestamp=timestamp,
            books=books,
            candles=self.candles.to_wire(),
            closed=closed,
            prints=self.tape.prints(quotes),
        )


def top_to_wire(book: WireBook | None) -> dict[str, float]:
    """The symbol quote's `bid`, `bidSize`, `ask`, `askSize` from a wire book (an empty side left out)."""
    if not book:
        return {}
    top: dict[str, float] = {}
    if book["bids"]:
        top["bid"], top["bidSize"] = book["bids"][0]
    if book["asks"]:
        top["ask"], top["askSize"] = book["asks"][0]
    return top


def tops_of(
    quotes: Mapping[str, Quote],
    liquidity: Mapping[str, SymbolLiquidity],
    *,
    seed: int,
    seq: int,
    profile: ProfileName,
) -> dict[str, dict[str, float]]:
    """Each symbol's top of book under `profile` at tick `seq`: the first level of the tick's books.

    Built with one level per side: the draws of level 0 do not depend on how many levels follow.
    """
    inputs = {}
    for symbol, quote in quotes.items():
        full = book_input(symbol, quote, liquidity)
        inputs[symbol] = dataclasses.replace(full, params=dataclasses.replace(full.params, depth_levels=1))
    books = wire_books_of_tick(inputs, seed=seed, seq=seq, profiles=(profile,))[profile]
    return {symbol: top_to_wire(book) for symbol, book in books.items()}


def books_of_event(event: MarketTickEvent) -> WireBooks:
    """The tick's books (profile -> symbol -> `{"bids": [[price, size], ...], "asks": ...}`); {} if it has none."""
    text = event.get("books")
    return json.loads(text) if text else {}


def tops_of_event(event: MarketTickEvent) -> WireTops:
    """The tick's tops of book (profile -> symbol -> `{bid, bidSize, ask, askSize}`); {} if it has none."""
    text = event.get("tops")
    return json.loads(text) if text else {}


def prints_of_event(event: MarketTickEvent) -> WirePrints:
    """The tick's trades (symbol -> `[price, size, side]`); {} if it has none."""
    text = event.get("prints")
    return json.loads(text) if text else {}


def candles_of_event(event: MarketTickEvent) -> WireCandles:
    """The tick's open candles (symbol -> interval -> bar); {} if it has none."""
    text = event.get("candles")
    return json.loads(text) if text else {}
