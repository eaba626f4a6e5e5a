"""Price engine of the simulated exchange: pure Python, no models, no database.

Two interchangeable sources implement `PriceSource`:
- `RandomWalkSource` moves each instrument by geometric Brownian motion, seeded per (seed, seq);
- `ReplaySource` plays recorded bars (market_app.bar_files) in order and wraps around at the end.
Both are pure functions of (constructor args, seq, previous quotes), so a worker that restarts
from a persisted (seq, quotes) continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from market_app.bar_files import Bar

TRADING_YEAR_SECONDS = 252 * 6.5 * 3600

# Multiplicative volume noise: lognormal with this sigma and mean 1.
VOLUME_NOISE_SIGMA = 0.5


@dataclass(frozen=True)
class InstrumentSpec:
    symbol: str
    tick_size: Decimal
    start_price: Decimal
    volatility: float
    drift: float
    base_volume: int

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        if not (self.tick_size.is_finite() and self.tick_size > 0):
            raise ValueError(f"{self.symbol}: tick_size must be positive, got {self.tick_size}")
        if not (self.start_price.is_finite() and self.start_price > 0):
            raise ValueError(f"{self.symbol}: start_price must be positive, got {self.start_price}")
        if not (math.isfinite(self.volatility) and self.volatility >= 0):
            raise ValueError(f"{self.symbol}: volatility must be >= 0, got {self.volatility}")
        if not math.isfinite(self.drift):
            raise ValueError(f"{self.symbol}: drift must be finite, got {self.drift}")
        if self.base_volume < 1:
            raise ValueError(f"{self.symbol}: base_volume must be >= 1, got {self.base_volume}")


@dataclass(frozen=True)
class Quote:
    price: Decimal
    open: Decimal
    volume: int

    @property
    def change(self) -> Decimal:
        return self.price - self.open

    def to_wire(self) -> dict[str, Any]:
        return {"price": float(self.price), "change": float(self.change), "volume": self.volume}

    def to_state(self) -> dict[str, Any]:
        return {"price": str(self.price), "open": str(self.open), "volume": self.volume}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Quote:
        # str() first so a float that slipped into the state does not become a long binary expansion.
        return cls(price=Decimal(str(data["price"])), open=Decimal(str(data["open"])), volume=int(data["volume"]))


class PriceSource(Protocol):
    def first_tick(self) -> dict[str, Quote]: ...

    def next_tick(self, seq: int, previous: Mapping[str, Quote]) -> dict[str, Quote]: ...


def round_to_tick(price: float | Decimal, tick_size: Decimal) -> Decimal:
    """`price` rounded to a multiple of `tick_size` (half-even), never below one tick."""
    ticks = int((Decimal(price) / tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))
    # tick_size * int keeps the tick's exponent, so 0.01 ticks always print with two decimals.
    return tick_size * max(ticks, 1)


def _check_seq(seq: int) -> None:
    if seq < 1:
        raise ValueError(f"next_tick needs seq >= 1, got {seq}")


class RandomWalkSource:
    def __init__(
        self, instruments: Sequence[InstrumentSpec], *, seed: int, tick_ms: int, time_scale: float = 60.0
    ) -> None:
        symbols = [spec.symbol for spec in instruments]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"duplicate symbols in {symbols}")
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, got {tick_ms}")
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        # Sorted so the draws for each instrument do not depend on the order the caller listed them in.
        self.instruments: tuple[InstrumentSpec, ...] = tuple(sorted(instruments, key=lambda spec: spec.symbol))
        self.seed = seed
        self.tick_ms = tick_ms
        self.time_scale = time_scale
        self.dt: float = tick_ms / 1000 * time_scale / TRADING_YEAR_SECONDS

    def _first_quote(self, spec: InstrumentSpec) -> Quote:
        start = round_to_tick(spec.start_price, spec.tick_size)
        return Quote(price=start, open=start, volume=0)

    def first_tick(self) -> dict[str, Quote]:
        return {spec.symbol: self._first_quote(spec) for spec in self.instruments}

    def next_tick(self, seq: int, previous: Mapping[str, Quote]) -> dict[str, Quote]:
        _check_seq(seq)
        # String seeds are hashed with SHA-512, so this is stable across processes and PYTHONHASHSEED.
        rng = random.Random(f"{self.seed}:{seq}")
        quotes: dict[str, Quote] = {}
        for spec in self.instruments:
            # Always draw, even for an instrument that starts now, so the others' paths do not change.
            z = rng.normalvariate(0.0, 1.0)
            noise = math.exp(VOLUME_NOISE_SIGMA * rng.normalvariate(0.0, 1.0) - VOLUME_NOISE_SIGMA**2 / 2)
            before = previous.get(spec.symbol)
            if before is None:
                quotes[spec.symbol] = self._first_quote(spec)
                continue
            log_return = (spec.drift - spec.volatility**2 / 2) * self.dt + spec.volatility * math.sqrt(self.dt) * z
            price = round_to_tick(float(before.price) * math.exp(log_return), spec.tick_size)
            volume = max(0, round(spec.base_volume * noise * (1 + abs(z))))
            quotes[spec.symbol] = Quote(price=price, open=before.open, volume=volume)
        return quotes


class ReplaySource:
    def __init__(self, bars: Mapping[str, Sequence[Bar]]) -> None:
        if not bars:
            raise ValueError("ReplaySource needs bars for at least one symbol")
        for symbol, symbol_bars in bars.items():
            if not symbol_bars:
                raise ValueError(f"ReplaySource has no bars for {symbol}")
        self.bars: dict[str, tuple[Bar, ...]] = {symbol: tuple(bars[symbol]) for symbol in sorted(bars)}

    def _quotes_at(self, seq: int) -> dict[str, Quote]:
        quotes: dict[str, Quote] = {}
        for symbol, symbol_bars in self.bars.items():
            bar = symbol_bars[seq % len(symbol_bars)]
            quotes[symbol] = Quote(price=bar.close, open=symbol_bars[0].open, volume=bar.volume)
        return quotes

    def first_tick(self) -> dict[str, Quote]:
        return self._quotes_at(0)

    def next_tick(self, seq: int, previous: Mapping[str, Quote]) -> dict[str, Quote]:
        _check_seq(seq)
        return self._quotes_at(seq)
