"""What the feed's producer adds to each tick beyond the prices: every profile's book and the open
candles. Pure Python, no models: computed once per tick (not per connection or simulator), then
persisted (top of book, closed candles) and published with the tick by `services.feed_advance`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from market_app.candles import CandleBuilder, ClosedBar
from market_app.liquidity import DEFAULT_LIQUIDITY, BookInput, LiquidityParams, books_of_tick
from market_app.prices import Quote

WireBook = dict[str, list[list[float]]]


@dataclass(frozen=True)
class SymbolLiquidity:
    tick_size: Decimal
    params: LiquidityParams


@dataclass(frozen=True)
class TickMarketData:
    timestamp: int  # epoch ms of the tick (its candles' clock)
    books: dict[str, dict[str, WireBook]]  # profile -> symbol -> every level
    tops: dict[str, dict[str, dict[str, float]]]  # profile -> symbol -> bid, ask, bidSize, askSize
    candles: dict[str, dict[str, dict[str, Any]]]  # symbol -> interval -> the open bar
    closed: list[ClosedBar] = field(default_factory=list)


def replay_tick_size(price: Decimal) -> Decimal:
    """A replayed bar's symbol without an instrument row: the tick its prices are quoted in (at most 0.01)."""
    exponent = price.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return Decimal(1).scaleb(-places)


class MarketDataBuilder:
    def __init__(self, liquidity: Mapping[str, SymbolLiquidity], *, seed: int) -> None:
        self.liquidity = dict(liquidity)
        self.seed = seed
        self.candles = CandleBuilder()

    def follow(self, liquidity: Mapping[str, SymbolLiquidity]) -> None:
        """New instrument settings (an admin edit): the open candles carry on."""
        self.liquidity = dict(liquidity)

    def _input(self, symbol: str, quote: Quote) -> BookInput:
        known = self.liquidity.get(symbol)
        if known is None:
            return BookInput(quote.price, quote.volume, replay_tick_size(quote.price), DEFAULT_LIQUIDITY)
        return BookInput(quote.price, quote.volume, known.tick_size, known.params)

    def tick(self, *, seq: int, timestamp: int, quotes: Mapping[str, Quote]) -> TickMarketData:
        books = books_of_tick(
            {symbol: self._input(symbol, quote) for symbol, quote in quotes.items()}, seed=self.seed, seq=seq
        )
        closed = self.candles.add_tick(timestamp, {s: (q.price, q.volume) for s, q in quotes.items()})
        return TickMarketData(
            timestamp=timestamp,
            books={str(p): {s: b.to_wire() for s, b in per.items()} for p, per in books.items()},
            tops={str(p): {s: b.top_to_wire() for s, b in per.items()} for p, per in books.items()},
            candles=self.candles.to_wire(),
            closed=closed,
        )
