"""Price engine of the simulated exchange: pure Python, no models, no database.

Two interchangeable sources implement `PriceSource`:
- `RandomWalkSource` moves each instrument by geometric Brownian motion, seeded per (seed, seq);
- `ReplaySource` plays recorded bars (see `load_bars`) in order and wraps around at the end.
Both are pure functions of (constructor args, seq, previous quotes), so a worker that restarts
from a persisted (seq, quotes) continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

TRADING_YEAR_SECONDS = 252 * 6.5 * 3600

BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")

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


@dataclass(frozen=True)
class Bar:
    timestamp: str
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


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


class BarFileError(ValueError):
    """A bar file that cannot be used; `line` (1 is the header) and `field` say where, when they can."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.line, self.field = line, field


class BarFieldError(ValueError):
    """One field of a bar is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_VOLUME = re.compile(r"[0-9]+")


def _parse_price(value: str, column: str) -> Decimal:
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise BarFieldError(column, f"{column} is not a number: {value!r}") from None
    if not (price.is_finite() and price > 0):
        raise BarFieldError(column, f"{column} must be a positive number, got {value!r}")
    return price


def bar_time(timestamp: str) -> datetime:
    """A bar's timestamp as an aware datetime: ISO 8601, UTC when it names no offset."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        raise BarFieldError("timestamp", f"timestamp is not ISO 8601: {timestamp!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_bar(cells: dict[str, str]) -> Bar:
    bar_time(cells["timestamp"])
    if not cells["symbol"]:
        raise BarFieldError("symbol", "symbol is empty")
    open_, high, low, close = (_parse_price(cells[column], column) for column in ("open", "high", "low", "close"))
    if high < low:
        raise BarFieldError("high", f"high {high} is below low {low}")
    for column, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            raise BarFieldError(column, f"{column} {price} is outside low {low} .. high {high}")
    if not _VOLUME.fullmatch(cells["volume"]):
        raise BarFieldError("volume", f"volume must be a non-negative integer, got {cells['volume']!r}")
    return Bar(
        timestamp=cells["timestamp"],
        symbol=cells["symbol"],
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=int(cells["volume"]),
    )


def load_bars(path: str | Path) -> dict[str, list[Bar]]:
    """Read a CSV file of bars (`parse_bars`). Raises BarFileError for a missing file or any bad line."""
    path = Path(path)
    try:
        # utf-8-sig: spreadsheets like to prepend a byte order mark to the header.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise BarFileError(f"{path}: cannot read bar file: {error}") from error
    return parse_bars(text, source=str(path))


def parse_bars(text: str, *, source: str, check: Callable[[Bar], None] | None = None) -> dict[str, list[Bar]]:
    """Parse a CSV of bars: header `timestamp,symbol,open,high,low,close,volume` (exactly these columns, any
    order), timestamp ISO 8601, prices positive decimals with low <= open,close <= high, volume a non-negative
    integer. `check` may refuse a bar with BarFieldError (a caller's own rules). Returns bars per symbol in file
    order. Raises BarFileError naming `source`, the line and the field of the first problem, or saying the text
    holds no bars."""
    reader = csv.reader(text.lstrip("\ufeff").splitlines(keepends=True))
    try:
        header = [cell.strip() for cell in next(reader, [])]
    except csv.Error as error:
        raise BarFileError(f"{source}, line 1: {error}", line=1) from None
    if sorted(header) != sorted(BAR_COLUMNS):
        raise BarFileError(
            f"{source}, line 1: header must have exactly the columns {','.join(BAR_COLUMNS)}, got {header}", line=1
        )

    bars: dict[str, list[Bar]] = {}
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"expected {len(header)} fields, got {len(row)}")
            bar = _parse_bar({column: cell.strip() for column, cell in zip(header, row, strict=True)})
            if check is not None:
                check(bar)
            bars.setdefault(bar.symbol, []).append(bar)
    except (ValueError, csv.Error) as error:
        field = error.field if isinstance(error, BarFieldError) else None
        raise BarFileError(f"{source}, line {reader.line_num}: {error}", line=reader.line_num, field=field) from None
    if not bars:
        raise BarFileError(f"{source}: contains no bars")
    return bars
