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
from typing import Any, Protocol

INTERVALS_MS: dict[str, int] = {"1s": 1_000, "1m": 60_000, "5m": 300_000}


class _PriceVolume(Protocol):
    @property
    def price(self) -> Decimal: ...

    @property
    def volume(self) -> int: ...


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


def bar_start(timestamp_ms: int, interval: str) -> int:
    length = INTERVALS_MS[interval]
    return timestamp_ms - timestamp_ms % length


@dataclass(frozen=True)
class ClosedBar:
    symbol: str
    interval: str
    bar: CandleBar


class _OpenBar:
    """A bar still taking ticks: updated in place, with its wire form kept current (ticks are hot)."""

    __slots__ = ("close", "high", "low", "open", "start_ms", "volume", "wire")

    def __init__(self, interval: str, start_ms: int, price: Decimal, price_f: float, volume: int) -> None:
        self.wire: dict[str, Any] = {"interval": interval}
        self.restart(start_ms, price, price_f, volume)

    def restart(self, start_ms: int, price: Decimal, price_f: float, volume: int) -> None:
        """Open the next bar of its interval in place (the closed one was frozen, if anyone wanted it)."""
        self.start_ms = start_ms
        self.open = self.high = self.low = self.close = price
        self.volume = volume
        wire = self.wire
        wire["start"] = start_ms
        wire["open"] = wire["high"] = wire["low"] = wire["close"] = price_f
        wire["volume"] = volume

    def add(self, price: Decimal, price_f: float, volume: int) -> None:
        wire = self.wire
        if price > self.high:
            self.high, wire["high"] = price, price_f
        elif price < self.low:
            self.low, wire["low"] = price, price_f
        self.close, wire["close"] = price, price_f
        self.volume += volume
        wire["volume"] = self.volume

    def frozen(self) -> CandleBar:
        return CandleBar(self.start_ms, self.open, self.high, self.low, self.close, self.volume)


class CandleBuilder:
    def __init__(self, intervals: tuple[str, ...] = tuple(INTERVALS_MS)) -> None:
        self.intervals = intervals
        self._open: dict[str, dict[str, _OpenBar]] = {}  # symbol -> interval -> bar

    @property
    def open_bars(self) -> dict[str, dict[str, CandleBar]]:
        return {symbol: {i: bar.frozen() for i, bar in bars.items()} for symbol, bars in self._open.items()}

    def add_tick(self, timestamp_ms: int, ticks: Mapping[str, _PriceVolume]) -> list[ClosedBar]:
        """Add one tick (symbol -> anything with `price` and `volume`, e.g. a Quote); returns the bars it closed."""
        closed: list[ClosedBar] = []
        self._add(timestamp_ms, ticks, closed)
        return closed

    def update(self, timestamp_ms: int, ticks: Mapping[str, _PriceVolume]) -> None:
        """`add_tick` for a caller that shows only the open bars (a replay: its daily bars close every
        shorter interval each time, and freezing those is most of the cost)."""
        self._add(timestamp_ms, ticks, None)

    def _add(self, timestamp_ms: int, ticks: Mapping[str, _PriceVolume], closed: list[ClosedBar] | None) -> None:
        starts = [(interval, timestamp_ms - timestamp_ms % INTERVALS_MS[interval]) for interval in self.intervals]
        for symbol, tick in ticks.items():
            price, volume = tick.price, tick.volume
            price_f = float(price)
            bars = self._open.get(symbol)
            if bars is None:
                bars = self._open[symbol] = {}
            for interval, start in starts:
                bar = bars.get(interval)
                if bar is not None and bar.start_ms == start:
                    bar.add(price, price_f, volume)
                    continue
                if bar is not None and bar.start_ms > start:
                    continue  # a clock that stepped back: leave the newer bar open, drop the stray tick
                if bar is None:
                    bars[interval] = _OpenBar(interval, start, price, price_f, volume)
                    continue
                if closed is not None:
                    closed.append(ClosedBar(symbol, interval, bar.frozen()))
                bar.restart(start, price, price_f, volume)

    def to_wire(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The open bars, symbol -> interval -> wire bar (copies: the builder goes on updating its own)."""
        return {symbol: {i: dict(bar.wire) for i, bar in bars.items()} for symbol, bars in self._open.items()}
