"""OHLCV bars of 1 s, 1 min and 5 min built from the feed's ticks: pure Python, no models.

A bar of interval I covers [start, start + I) of wall-clock epoch milliseconds, start a multiple of
I. A tick at time t with price p and volume v goes into the bar holding t: the first tick of a bar
opens it at p, every tick raises the high, lowers the low and sets the close to p, and adds v to
the volume. A bar closes when the first tick of a later bar arrives (so an interval without ticks
has no bar, and the newest bar is open until the next one starts). The feed's producer keeps one
`CandleBuilder`, persists the bars it closes and puts the open ones in each tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

INTERVALS_MS: dict[str, int] = {"1s": 1_000, "1m": 60_000, "5m": 300_000}

# How long closed bars are kept, per interval (the producer prunes older ones).
RETENTION_MS: dict[str, int] = {"1s": 2 * 3_600_000, "1m": 7 * 86_400_000, "5m": 30 * 86_400_000}


@dataclass(frozen=True)
class CandleBar:
    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def with_tick(self, price: Decimal, volume: int) -> CandleBar:
        return CandleBar(
            start_ms=self.start_ms,
            open=self.open,
            high=max(self.high, price),
            low=min(self.low, price),
            close=price,
            volume=self.volume + volume,
        )

    def to_wire(self, interval: str) -> dict[str, Any]:
        return {
            "interval": interval,
            "start": self.start_ms,
            "open": float(self.open),
            "high": float(self.high),
            "low": float(self.low),
            "close": float(self.close),
            "volume": self.volume,
        }


def bar_start(timestamp_ms: int, interval: str) -> int:
    length = INTERVALS_MS[interval]
    return timestamp_ms - timestamp_ms % length


@dataclass(frozen=True)
class ClosedBar:
    symbol: str
    interval: str
    bar: CandleBar


class CandleBuilder:
    def __init__(self, intervals: tuple[str, ...] = tuple(INTERVALS_MS)) -> None:
        self.intervals = intervals
        self.open_bars: dict[str, dict[str, CandleBar]] = {}  # symbol -> interval -> bar

    def add_tick(self, timestamp_ms: int, prices: Mapping[str, tuple[Decimal, int]]) -> list[ClosedBar]:
        """Add one tick (symbol -> (price, volume)); returns the bars it closed."""
        closed: list[ClosedBar] = []
        for symbol, (price, volume) in prices.items():
            bars = self.open_bars.setdefault(symbol, {})
            for interval in self.intervals:
                start = bar_start(timestamp_ms, interval)
                bar = bars.get(interval)
                if bar is not None and bar.start_ms == start:
                    bars[interval] = bar.with_tick(price, volume)
                    continue
                if bar is not None and bar.start_ms > start:
                    continue  # a clock that stepped back: leave the newer bar open, drop the stray tick
                if bar is not None:
                    closed.append(ClosedBar(symbol, interval, bar))
                bars[interval] = CandleBar(start, price, price, price, price, volume)
        return closed

    def to_wire(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The open bars, symbol -> interval -> wire bar."""
        return {
            symbol: {interval: bar.to_wire(interval) for interval, bar in bars.items()}
            for symbol, bars in self.open_bars.items()
        }
