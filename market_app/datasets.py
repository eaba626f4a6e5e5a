"""Datasets: files of bars kept for replay (docs/datasets.md). Services to import one whole, rename,
share and delete it; selectors for what a user may see.

A file (CSV text or Parquet bytes) is checked whole before anything is stored (market_app.bar_files, then duplicates and
the limits), and stored in one transaction: a bad line is named with its field and nothing is kept.
A user sees their own datasets and the shared ones; an operator's (no owner) are made in the admin
or by `manage.py import_dataset`.
"""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from market_app.bar_files import (
    PARQUET_MAGIC,
    Bar,
    BarFieldError,
    BarFileError,
    bar_time,
    parse_bars,
    parse_parquet_bars,
)
from market_app.errors import DatasetCode
from market_app.models import SYMBOL_PATTERN, Dataset, DatasetBar
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.realtime.message_base import epoch_ms
from simulator_app.models import LIVE_STATUSES, Simulator

INSERT_BATCH = 5_000
# Shipped with the service, shared with every user (market_app/data/LICENSE-arch.md).
SHIPPED = (
    (
        "US indices, daily 1999-2018",
        Path(__file__).resolve().parent / "data" / "us-indices-daily.csv.gz",
        "S&P 500 (SPX) and NASDAQ Composite (IXIC) daily bars from the example data of the arch package 8.0.0 "
        "(NCSA license, market_app/data/LICENSE-arch.md)",
    ),
)
SYMBOL = re.compile(SYMBOL_PATTERN)


def _refused(error: BarFileError) -> ProtocolError:
    where = f"{error.unit} {error.line}" if error.line is not None else "file"
    field = f"{where}.{error.field}" if error.field else where
    return ProtocolError(
        DatasetCode.INVALID_DATASET, str(error), details=[ErrorDetail(field=field, problem=str(error))]
    )


def bar_file(raw: bytes) -> str | bytes:
    """An uploaded file as `parse_dataset` takes it: a Parquet file's bytes as they are, else CSV text."""
    if raw.startswith(PARQUET_MAGIC):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ProtocolError(
            DatasetCode.INVALID_DATASET, f"the file is neither UTF-8 text (a CSV) nor Parquet: {error}"
        ) from None


def parse_dataset(content: str | bytes, *, name: str) -> list[DatasetBar]:
    """The bars of a file, a CSV's text or a Parquet file's bytes, checked whole (unsaved rows);
    ProtocolError `invalid_dataset` names the first bad line (row) and field, `dataset_too_large` a
    file with more than DATASET_MAX_BARS."""
    bars: list[DatasetBar] = []
    seen: set[tuple[str, datetime]] = set()

    def check(bar: Bar) -> None:
        if SYMBOL.fullmatch(bar.symbol) is None:
            raise BarFieldError("symbol", f"symbol {bar.symbol!r} is not 1-20 of A-Z 0-9 . - (upper case)")
        at = bar_time(bar.timestamp)
        if (bar.symbol, at) in seen:
            raise BarFieldError("timestamp", f"{bar.symbol} has a bar at {bar.timestamp} already")
        seen.add((bar.symbol, at))
        if len(bars) == settings.DATASET_MAX_BARS:
            raise ProtocolError(
                DatasetCode.DATASET_TOO_LARGE, f"a dataset holds at most {settings.DATASET_MAX_BARS} bars"
            )
        bars.append(
            DatasetBar(
                symbol=bar.symbol, at=at, open=bar.open, high=bar.high, low=bar.low, close=bar.close, volume=bar.volume
            )
        )

    try:
        if isinstance(content, bytes):
            parse_parquet_bars(content, source=name, check=check)
        else:
            parse_bars(content, source=name, check=check)
    except BarFileError as error:
        raise _refused(error) from None
    return bars


def dataset_import(
    *, owner_id: int | None, name: str, content: str | bytes, shared: bool = False, source: str = ""
) -> Dataset:
    """Check the file (a CSV's text, a Parquet file's bytes) whole, then store it as a new dataset in one
    transaction."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ProtocolError(
            DatasetCode.INVALID_DATASET,
            "a dataset needs a name of 1 to 100 characters",
            details=[ErrorDetail(field="name", problem="1 to 100 characters")],
        )
    if owner_id is not None and Dataset.objects.filter(owner_id=owner_id).count() >= settings.DATASETS_PER_USER:
        raise ProtocolError(DatasetCode.DATASET_LIMIT, f"a user keeps at most {settings.DATASETS_PER_USER} datasets")
    return dataset_store(
        owner_id=owner_id, name=name, bars=parse_dataset(content, name=name), shared=shared, source=source
    )


def dataset_store(
    *, owner_id: int | None, name: str, bars: list[DatasetBar], shared: bool = False, source: str = ""
) -> Dataset:
    """Store bars `parse_dataset` checked as a new dataset, in one transaction."""
    times = [bar.at for bar in bars]
    ranges: dict[str, list[DatasetBar]] = {}
    for bar in bars:
        ranges.setdefault(bar.symbol, []).append(bar)
    symbols = [
        {
            "symbol": symbol,
            "bars": len(of_symbol),
            "firstAt": epoch_ms(min(bar.at for bar in of_symbol)),
            "lastAt": epoch_ms(max(bar.at for bar in of_symbol)),
        }
        for symbol, of_symbol in sorted(ranges.items())
    ]
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                owner_id=owner_id,
                name=name,
                shared=shared,
                source=source[:300],
                bar_count=len(bars),
                first_at=min(times),
                last_at=max(times),
                symbols=symbols,
            )
            for bar in bars:
                bar.dataset = dataset
            DatasetBar.objects.bulk_create(bars, batch_size=INSERT_BATCH)
    except IntegrityError:
        raise ProtocolError(DatasetCode.DATASET_NAME_TAKEN, f"a dataset named {name!r} exists already") from None
    return dataset


def read_bar_file(path: Path) -> str | bytes:
    """A bar file as `parse_dataset` takes it: a CSV (or a gzip of one, `.gz`), or a Parquet file."""
    raw = path.read_bytes()
    return bar_file(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def datasets_ensure_shipped() -> list[Dataset]:
    """Import the datasets shipped with the service that are not there yet (an operator's, shared)."""
    made = []
    for name, path, source in SHIPPED:
        if not Dataset.objects.filter(owner__isnull=True, name=name).exists():
            made.append(
                dataset_import(owner_id=None, name=name, content=read_bar_file(path), shared=True, source=source)
            )
    return made


def dataset_delete(*, user_id: int, dataset_id: int) -> None:
    """Delete one of the user's own datasets (its bars go with it), unless a live simulator replays it."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id, owner_id=user_id).first()
        if dataset is None:
            raise ProtocolError(DatasetCode.UNKNOWN_DATASET)
        if dataset_replayed(dataset_id=dataset_id):
            raise ProtocolError(DatasetCode.DATASET_IN_USE)
        dataset.delete()


# --- Selectors --------------------------------------------------------------------------------------


def datasets_visible_to(*, user_id: int) -> QuerySet[Dataset]:
    """The user's own datasets and the shared ones, by name."""
    return Dataset.objects.filter(Q(owner_id=user_id) | Q(shared=True))


def dataset_replayed(*, dataset_id: int) -> bool:
    """Does a live simulator replay the dataset?"""
    return Simulator.objects.filter(
        status__in=LIVE_STATUSES, market__source="replay", market__datasetId=str(dataset_id)
    ).exists()


def dataset_bars_in_range(
    *, dataset_id: int, symbols: list[str], start_ms: int, end_ms: int
) -> list[tuple[int, str, Decimal, Decimal, Decimal, Decimal, int]]:
    """The dataset's bars of `symbols` from `start_ms` to `end_ms` (inclusive), by time then symbol:
    (epoch ms, symbol, open, high, low, close, volume)."""
    rows = (
        DatasetBar.objects.filter(
            dataset_id=dataset_id, symbol__in=symbols, at__gte=_moment(start_ms), at__lte=_moment(end_ms)
        )
        .order_by("at", "symbol")
        .values_list("at", "symbol", "open", "high", "low", "close", "volume")
    )
    return [
        (epoch_ms(at), symbol, o, h, low, c, v)
        for at, symbol, o, h, low, c, v in rows.iterator(chunk_size=INSERT_BATCH)
    ]


def dataset_created_at(*, dataset_id: int) -> datetime | None:
    return Dataset.objects.filter(pk=dataset_id).values_list("created_at", flat=True).first()


def dataset_bar_times(*, dataset_id: int, symbols: list[str], start_ms: int, end_ms: int) -> int:
    """How many distinct bar times the range holds for `symbols`."""
    return (
        DatasetBar.objects.filter(
            dataset_id=dataset_id, symbol__in=symbols, at__gte=_moment(start_ms), at__lte=_moment(end_ms)
        )
        .values("at")
        .distinct()
        .count()
    )


def dataset_symbols(*, dataset_id: int) -> list[dict[str, Any]]:
    """Its symbols with their bar counts and ranges (`symbol`, `bars`, `firstAt`, `lastAt`)."""
    symbols: list[dict[str, Any]] = (
        Dataset.objects.filter(pk=dataset_id).values_list("symbols", flat=True).first() or []
    )
    return symbols


def dataset_first_close(*, dataset_id: int, symbol: str) -> Decimal:
    close: Decimal = (
        DatasetBar.objects.filter(dataset_id=dataset_id, symbol=symbol)
        .order_by("at")
        .values_list("close", flat=True)[0]
    )
    return close


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def dataset_for_user(*, user_id: int, dataset_id: int) -> Dataset:
    dataset = datasets_visible_to(user_id=user_id).filter(pk=dataset_id).first()
    if dataset is None:
        raise ProtocolError(DatasetCode.UNKNOWN_DATASET)
    return dataset
