"""The liquidity model: a seeded order book of N levels per side around each tick's price.

Pure Python, no models. The public API other modules rely on::

    @dataclass(frozen=True)
    class Level:            price: Decimal; size: Decimal
    @dataclass(frozen=True)
    class Book:             bids: tuple[Level, ...]  # best (highest) first
                            asks: tuple[Level, ...]  # best (lowest) first
                            # bid, ask, bid_size, ask_size: Decimal | None (None when that side is empty)
                            # mid: Decimal | None; spread: Decimal | None
    @dataclass(frozen=True)
    class LiquidityParams:  spread_bps: float; depth_levels: int; top_size: Decimal;
                            depth_decay: float; level_gap_ticks: int; lot_size: Decimal = Decimal(1)

    def book_of(*, price: Decimal, tick_size: Decimal, params: LiquidityParams, realism: Realism,
                seed: int, seq: int, symbol: str, volume: int = 0) -> Book

The model, per (seed, seq, symbol), with `random.Random(f"book:{seed}:{seq}:{symbol}")` (string
seeds are hashed with SHA-512: stable across processes, unlike `hash()`); every profile draws the
same numbers, so `realistic` and `harsh` differ only by their factors:

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
  lognormal noise of mean 1 (sigma `SIZE_SIGMA`), rounded to whole `lot_size`s, never below one lot.
- **Frictionless profile** (`ideal`): one level per side, both at the tick's price, each holding the
  tick's volume (a zero volume gives an empty book: nothing to trade against). This is the exchange
  of before the book: fills at the tick's price, bounded by the tick's volume.

The book is computed once per tick and profile by the feed's producer (see `books_of_tick`), not per
connection: prices are built as `tick_size * int`, sizes as `lot_size * int`, from float draws.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from market_app.realism import PROFILES, ProfileName, Realism

SPREAD_SIGMA = 0.25  # lognormal sigma of the spread's noise
SIZE_SIGMA = 0.35  # lognormal sigma of each level's size noise
MAX_DEPTH_LEVELS = 50


@dataclass(frozen=True, slots=True)
class Level:
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

    def to_wire(self, depth: int | None = None) -> dict[str, list[list[float]]]:
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


def _noise(rng: random.Random, sigma: float) -> float:
    """Lognormal with mean 1."""
    return math.exp(sigma * rng.gauss(0.0, 1.0) - sigma * sigma / 2)


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
        if volume <= 0:
            return EMPTY_BOOK
        level = (Level(price, Decimal(volume)),)
        return Book(bids=level, asks=level)
    rng = random.Random(f"book:{seed}:{seq}:{symbol}")
    price_ticks = int(price / tick_size)
    target = float(price) * params.spread_bps / 10_000 * realism.spread_factor / float(tick_size)
    spread = max(1, round(target * _noise(rng, SPREAD_SIGMA)))
    below = spread // 2 + (spread % 2 if rng.random() < 0.5 else 0)
    bid_ticks = max(1, price_ticks - below)
    ask_ticks = bid_ticks + spread
    gap = params.level_gap_ticks
    lots = float(params.top_size / params.lot_size) * realism.depth_factor
    decay = params.depth_decay
    bids: list[Level] = []
    asks: list[Level] = []
    for k in range(params.depth_levels):
        mean = lots * decay**k
        bid_size = params.lot_size * max(1, round(mean * _noise(rng, SIZE_SIGMA)))
        ask_size = params.lot_size * max(1, round(mean * _noise(rng, SIZE_SIGMA)))
        ticks_below = bid_ticks - k * gap
        if ticks_below >= 1:  # a bid never goes to zero or below
            bids.append(Level(tick_size * ticks_below, bid_size))
        asks.append(Level(tick_size * (ask_ticks + k * gap), ask_size))
    return Book(bids=tuple(bids), asks=tuple(asks))


@dataclass(frozen=True)
class BookInput:
    """What `books_of_tick` needs of one symbol's tick."""

    price: Decimal
    volume: int
    tick_size: Decimal
    params: LiquidityParams


def books_of_tick(
    ticks: Mapping[str, BookInput], *, seed: int, seq: int, profiles: tuple[ProfileName, ...] = tuple(ProfileName)
) -> dict[ProfileName, dict[str, Book]]:
    """Every symbol's book under every profile: what the feed's producer computes once per tick."""
    return {
        name: {
            symbol: book_of(
                price=t.price,
                tick_size=t.tick_size,
                params=t.params,
                realism=PROFILES[name],
                seed=seed,
                seq=seq,
                symbol=symbol,
                volume=t.volume,
            )
            for symbol, t in ticks.items()
        }
        for name in profiles
    }
