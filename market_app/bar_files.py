"""Files of bars: the format a dataset and the shared feed's replay read (docs/datasets.md), as CSV
text or as a Parquet file (read by pyarrow). Each bar is checked as it is read; a problem is named by
the line (CSV, 1 is the header) or the row (Parquet, 1 is the first) and the field it is in. No
models, no database."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
PARQUET_MAGIC = b"PAR1"  # a Parquet file starts (and ends) with it


@dataclass(frozen=True)
class Bar:
    timestamp: str
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


class BarFileError(ValueError):
    """A bar file that cannot be used; `line` (1 is a CSV's header; a Parquet file's first row when
    `unit` is "row") and `field` say where, when they can."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None, unit: str = "line") -> None:
        super().__init__(message)
        self.line, self.field, self.unit = line, field, unit


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


def _cell(value: object) -> str:
    """A Parquet value as the text a CSV cell would hold (times as ISO 8601, whole floats as integers)."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and math.isfinite(value) else repr(value)
    return str(value)


def parse_parquet_bars(data: bytes, *, source: str, check: Callable[[Bar], None] | None = None) -> dict[str, list[Bar]]:
    """Parse a Parquet file of bars: the same seven columns (any order, any other refused), `timestamp` a
    timestamp, a date or ISO 8601 text (UTC when it names no zone), prices numbers or decimals, `volume` a
    whole number; every row checked as a CSV line is. Raises BarFileError naming `source`, the row and
    the field of the first problem."""
    # Imported here: only an upload of Parquet needs it, and each server process would pay its import.
    import pyarrow
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError, ValueError) as error:
        raise BarFileError(f"{source}: not a readable Parquet file: {error}") from None
    if sorted(table.column_names) != sorted(BAR_COLUMNS):
        raise BarFileError(
            f"{source}: columns must be exactly {','.join(BAR_COLUMNS)}, got {table.column_names}", line=0, unit="row"
        )
    bars: dict[str, list[Bar]] = {}
    for row, values in enumerate(table.to_pylist(), start=1):
        try:
            bar = _parse_bar({column: _cell(values[column]) for column in BAR_COLUMNS})
            if check is not None:
                check(bar)
        except ValueError as error:
            field = error.field if isinstance(error, BarFieldError) else None
            raise BarFileError(f"{source}, row {row}: {error}", line=row, field=field, unit="row") from None
        bars.setdefault(bar.symbol, []).append(bar)
    if not bars:
        raise BarFileError(f"{source}: contains no bars")
    return bars
