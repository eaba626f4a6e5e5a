"""The liquidity model: a seeded order book of N levels per side around each tick's price.

Pure Python, no models. The public API other modules rely on::

    class Level(NamedTuple): price: Decimal; size: Decimal          # immutable, cheap to build
    @dataclass(frozen=True)
    class Book:             bids: tuple[Level, ...]  # best (highest) first
                            asks: tuple[Level, ...]  # best (lowest) first
                            # bid, ask, bid_size, ask_size: Decimal | None (None when that side is empty)
                            # mid: Decimal | None; spread: Decimal | None
                            # to_wire(depth) / Book.from_wire(...): {"bids": [[price, size], ...], "asks": ...}
    @dataclass(frozen=True)
    class LiquidityParams:  spread_bps: float; depth_levels: int; top_size: Decimal;
                            depth_decay: float; level_gap_ticks: int; lot_size: Decimal = Decimal(1)

    def book_of(*, price: Decimal, tick_size: Decimal, params: LiquidityParams, realism: Realism,
                seed: int, seq: int, symbol: str, volume: int = 0) -> Book

The model, per (seed, seq, symbol), draws from the SHAKE-128 output of `book:{seed}:{seq}:{symbol}`
(stable across processes and Python versions, unlike `hash()`). Every profile uses the same draws, so
`realistic` and `harsh` differ only by their factors. Each "lognormal noise of mean 1, sigma s" below
is one of `NOISE_QUANTILES` equally likely values, the lognormal's quantiles at (i + 1/2) /
NOISE_QUANTILES, normalized to mean exactly 1 (drawing one is a table look-up):

- **Spread.** The target full spread is `price * spread_bps / 10_000 * realism.spread_factor`, in
  ticks. The drawn spread is that target times a lognormal noise of mean 1 (sigma `SPREAD_SIGMA`),
  rounded to whole ticks, never below one tick. So its mean is the target once the target spans a
  few ticks; a target under a tick is always one tick.
- **Placement.** The spread straddles the tick's price: the bid is `floor(spread / 2)` ticks below
  it and the ask `spread` ticks above the bid (an odd spread leans up or down at random, so the price
  is the mid on average). The bid never goes below one tick.
- **Depth.** `depth_levels` levels per side, `level_gap_ticks` ticks apart, outward from the best.
  Level k (0 at the touch) holds on average `top_size * depth_decay ** k * realism.depth_factor`:
  a decay below 1 thins the book outward, above 1 thickens it. Each size is that mean times its own
  lognormal noise of mean 1 (sigma `SIZE_SIGMA`), rounded (half up) to whole `lot_size`s, never
  below one lot (nor above `MAX_LEVEL_LOTS`).
- **Frictionless profile** (`ideal`): one level per side, both at the tick's price, each holding the
  tick's volume (a zero volume gives an empty book: nothing to trade against). This is the exchange
  of before the book: fills at the tick's price, bounded by the tick's volume.

The feed's producer computes every profile's book once per tick (`wire_books_of_tick`: the draws once
per symbol, the book in whole ticks and lots, then straight to wire floats), not per connection.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any, NamedTuple

from market_app.realism import PROFILES, ProfileName, Realism

SPREAD_SIGMA = 0.25  # lognormal sigma of the spread's noise
SIZE_SIGMA = 0.35  # lognormal sigma of each level's size noise
MAX_DEPTH_LEVELS = 50
MAX_LEVEL_LOTS = 10**12  # a level's size cap (a steep decay over many levels would overflow floats)
NOISE_QUANTILES = 4096  # a power of two: one draw is 12 bits
_NOISE_BITS = NOISE_QUANTILES.bit_length() - 1
WireBook = dict[str, list[list[float]]]  # {"bids": [[price, size], ...], "asks": [...]}


class Level(NamedTuple):
    price: Decimal
    size: Decimal


@dataclass(frozen=True)
class Book:
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first

    @property
    def bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def bid_size(self) -> Decimal | None:
        return self.bids[0].size if self.bids else None

    @property
    def ask_size(self) -> Decimal | None:
        return self.asks[0].size if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2

    @property
    def spread(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0].price - self.bids[0].price

    def top_to_wire(self) -> dict[str, float]:
        """`bid`, `ask`, `bidSize`, `askSize` of the wire's symbol quote (a side left out when empty)."""
        top: dict[str, float] = {}
        if self.bids:
            top["bid"], top["bidSize"] = float(self.bids[0].price), float(self.bids[0].size)
        if self.asks:
            top["ask"], top["askSize"] = float(self.asks[0].price), float(self.asks[0].size)
        return top

    def to_wire(self, depth: int | None = None) -> WireBook:
        """The first `depth` levels (all when None) per side as `[[price, size], ...]`."""
        return {
            "bids": [[float(level.price), float(level.size)] for level in self.bids[:depth]],
            "asks": [[float(level.price), float(level.size)] for level in self.asks[:depth]],
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Book:
        # str() first: a float of a tick-grid price prints as that price.
        return cls(
            bids=tuple(Level(Decimal(str(p)), Decimal(str(s))) for p, s in data.get("bids", ())),
            asks=tuple(Level(Decimal(str(p)), Decimal(str(s))) for p, s in data.get("asks", ())),
        )


EMPTY_BOOK = Book(bids=(), asks=())


@dataclass(frozen=True)
class LiquidityParams:
    spread_bps: float  # typical full spread, basis points of the price (before the profile's factor)
    depth_levels: int  # levels per side
    top_size: Decimal  # typical size at the best level (before the profile's factor)
    depth_decay: float  # level k holds top_size * depth_decay ** k on average
    level_gap_ticks: int  # price gap between neighbouring levels, in ticks
    lot_size: Decimal = Decimal(1)  # sizes are whole multiples of this

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spread_bps) and self.spread_bps >= 0):
            raise ValueError(f"spread_bps must be >= 0, got {self.spread_bps}")
        if not 1 <= self.depth_levels <= MAX_DEPTH_LEVELS:
            raise ValueError(f"depth_levels must be 1..{MAX_DEPTH_LEVELS}, got {self.depth_levels}")
        if not (self.top_size.is_finite() and self.top_size > 0):
            raise ValueError(f"top_size must be positive, got {self.top_size}")
        if not (math.isfinite(self.depth_decay) and self.depth_decay > 0):
            raise ValueError(f"depth_decay must be positive, got {self.depth_decay}")
        if self.level_gap_ticks < 1:
            raise ValueError(f"level_gap_ticks must be >= 1, got {self.level_gap_ticks}")
        if not (self.lot_size.is_finite() and self.lot_size > 0):
            raise ValueError(f"lot_size must be positive, got {self.lot_size}")


# What a replayed bar's symbol (no Instrument row, or one without its own settings) trades with.
DEFAULT_LIQUIDITY = LiquidityParams(
    spread_bps=5.0, depth_levels=10, top_size=Decimal(500), depth_decay=1.15, level_gap_ticks=1
)


def _noise_table(sigma: float) -> tuple[float, ...]:
    normal = NormalDist()
    values = [math.exp(sigma * normal.inv_cdf((i + 0.5) / NOISE_QUANTILES)) for i in range(NOISE_QUANTILES)]
    mean = math.fsum(values) / NOISE_QUANTILES
    return tuple(value / mean for value in values)


_SPREAD_NOISE = _noise_table(SPREAD_SIGMA)
_SIZE_NOISE = _noise_table(SIZE_SIGMA)


@dataclass(frozen=True)
class Draws:
    """The random part of one symbol's book at one tick, shared by every profile."""

    spread: float  # the spread's noise
    lean_down: bool  # an odd spread puts its extra tick below the price
    sizes: tuple[float, ...]  # bid, ask noise of level 0, then of level 1, ...


def draws_of(*, seed: int, seq: int, symbol: str, levels: int) -> Draws:
    # SHAKE-128's output is the random stream: 16 bits per draw (the top 12 pick a quantile).
    count = 2 + 2 * levels
    digest = hashlib.shake_128(f"book:{seed}:{seq}:{symbol}".encode()).digest(2 * count)
    words = struct.unpack(f">{count}H", digest)
    shift = 16 - _NOISE_BITS
    return Draws(
        spread=_SPREAD_NOISE[words[0] >> shift],
        lean_down=bool(words[1] & 1),
        sizes=tuple(_SIZE_NOISE[word >> shift] for word in words[2:]),
    )


@dataclass(frozen=True)
class Layout:
    """A book in whole ticks and lots, best first: what `Book` and the wire form are both built from."""

    bids: tuple[tuple[int, int], ...]  # (price in ticks, size in lots)
    asks: tuple[tuple[int, int], ...]


def _layout(price: Decimal, tick_size: Decimal, params: LiquidityParams, realism: Realism, draws: Draws) -> Layout:
    price_ticks = int(price / tick_size)
    target = float(price) * params.spread_bps / 10_000 * realism.spread_factor / float(tick_size)
    spread = max(1, round(target * draws.spread))
    below = spread // 2 + (spread % 2 if draws.lean_down else 0)
    bid_ticks = max(1, price_ticks - below)
    ask_ticks = bid_ticks + spread
    gap = params.level_gap_ticks
    mean = float(params.top_size / params.lot_size) * realism.depth_factor
    decay = params.depth_decay
    noise = draws.sizes
    bids: list[tuple[int, int]] = []
    asks: list[tuple[int, int]] = []
    for k in range(params.depth_levels):
        # int(x + 0.5) rounds half up, at a fraction of round()'s cost on this path.
        bid_lots = min(MAX_LEVEL_LOTS, int(mean * noise[2 * k] + 0.5))
        ask_lots = min(MAX_LEVEL_LOTS, int(mean * noise[2 * k + 1] + 0.5))
        ticks_below = bid_ticks - k * gap
        if ticks_below >= 1:  # a bid never goes to zero or below
            bids.append((ticks_below, bid_lots if bid_lots > 1 else 1))
        asks.append((ask_ticks + k * gap, ask_lots if ask_lots > 1 else 1))
        mean *= decay
    return Layout(tuple(bids), tuple(asks))


def _book(layout: Layout, tick_size: Decimal, lot_size: Decimal) -> Book:
    return Book(
        bids=tuple(Level(tick_size * t, lot_size * n) for t, n in layout.bids),
        asks=tuple(Level(tick_size * t, lot_size * n) for t, n in layout.asks),
    )


@functools.lru_cache(maxsize=1024)
def _fraction(step: Decimal) -> tuple[int, int]:
    """`step` as numerator / denominator, both exact integers (the denominator a power of ten)."""
    _, digits, exponent = step.as_tuple()
    assert isinstance(exponent, int)
    numerator = int("".join(map(str, digits)))
    return (numerator * 10**exponent, 1) if exponent >= 0 else (numerator, 10**-exponent)


def _wire(layout: Layout, tick_size: Decimal, lot_size: Decimal) -> WireBook:
    # n * a / b of exact integers is one correctly rounded division: the float nearest the decimal
    # n * step, which is what float(Decimal) gives, at a fraction of its cost.
    ta, tb = _fraction(tick_size)
    la, lb = _fraction(lot_size)
    return {
        "bids": [[t * ta / tb, n * la / lb] for t, n in layout.bids],
        "asks": [[t * ta / tb, n * la / lb] for t, n in layout.asks],
    }


def book_of(
    *,
    price: Decimal,
    tick_size: Decimal,
    params: LiquidityParams,
    realism: Realism,
    seed: int,
    seq: int,
    symbol: str,
    volume: int = 0,
) -> Book:
    """The book around `price` at tick `seq` (see the module's docstring for the model)."""
    if realism.frictionless:
        return _frictionless(price, volume)
    draws = draws_of(seed=seed, seq=seq, symbol=symbol, levels=params.depth_levels)
    return _book(_layout(price, tick_size, params, realism, draws), tick_size, params.lot_size)


def _frictionless(price: Decimal, volume: int) -> Book:
    if volume <= 0:
        return EMPTY_BOOK
    level = (Level(price, Decimal(volume)),)
    return Book(bids=level, asks=level)


@dataclass(frozen=True)
class BookInput:
    """What `books_of_tick` needs of one symbol's tick."""

    price: Decimal
    volume: int
    tick_size: Decimal
    params: LiquidityParams


def _layouts_of_tick(
    ticks: Mapping[str, BookInput], seed: int, seq: int, profiles: tuple[ProfileName, ...]
) -> dict[ProfileName, dict[str, Layout | None]]:
    """None for a frictionless profile's book (built from the price and volume alone)."""
    layouts: dict[ProfileName, dict[str, Layout | None]] = {name: {} for name in profiles}
    for symbol, t in ticks.items():
        draws: Draws | None = None
        for name in profiles:
            realism = PROFILES[name]
            if realism.frictionless:
                layouts[name][symbol] = None
                continue
            if draws is None:
                draws = draws_of(seed=seed, seq=seq, symbol=symbol, levels=t.params.depth_levels)
            layouts[name][symbol] = _layout(t.price, t.tick_size, t.params, realism, draws)
    return layouts


def books_of_tick(
    ticks: Mapping[str, BookInput], *, seed: int, seq: int, profiles: tuple[ProfileName, ...] = tuple(ProfileName)
) -> dict[ProfileName, dict[str, Book]]:
    """Every symbol's book under every profile: the books `book_of` gives, drawing once per symbol."""
    books: dict[ProfileName, dict[str, Book]] = {}
    for name, per_symbol in _layouts_of_tick(ticks, seed, seq, profiles).items():
        books[name] = {}
        for symbol, layout in per_symbol.items():
            t = ticks[symbol]
            books[name][symbol] = (
                _frictionless(t.price, t.volume) if layout is None else _book(layout, t.tick_size, t.params.lot_size)
            )
    return books


def wire_books_of_tick(
    ticks: Mapping[str, BookInput], *, seed: int, seq: int, profiles: tuple[ProfileName, ...] = tuple(ProfileName)
) -> dict[str, dict[str, WireBook]]:
    """`books_of_tick` in wire form (profile -> symbol -> `Book.to_wire()`), without building Decimals:
    what the feed's producer computes once per tick."""
    wire: dict[str, dict[str, WireBook]] = {}
    for name, per_symbol in _layouts_of_tick(ticks, seed, seq, profiles).items():
        books: dict[str, WireBook] = {}
        for symbol, layout in per_symbol.items():
            t = ticks[symbol]
            if layout is None:
                books[symbol] = {
                    "bids": [[float(t.price), float(t.volume)]] if t.volume > 0 else [],
                    "asks": [[float(t.price), float(t.volume)]] if t.volume > 0 else [],
                }
            else:
                books[symbol] = _wire(layout, t.tick_size, t.params.lot_size)
        wire[str(name)] = books
    return wire
