"""A new simulator's market, checked against the data before the simulator is made: the `market` of
`start_simulator` turned into what simulator_app keeps (`Simulator.market`) and the clock's first
settings (docs/replay.md). A replay's symbols get an instrument each (kept out of the shared feed when
new), so their orders are recorded like any other."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings

from market_app import datasets
from market_app.errors import DatasetCode
from market_app.marketdata import replay_tick_size
from market_app.models import Instrument
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.realtime.message_base import now_ms
from simulator_app.clock import MAX_SPEED, MIN_SPEED, ClockSettings
from simulator_app.messages import MarketChoice

REPLAY_ONLY = ("datasetId", "symbols", "start", "end")


def _invalid(field: str, problem: str) -> ProtocolError:
    return ProtocolError(
        DatasetCode.INVALID_MARKET,
        f"market.{field}: {problem}",
        details=[ErrorDetail(field=f"market.{field}", problem=problem)],
    )


def _speed(choice: MarketChoice, default: float) -> float | None:
    if choice.speed is None:
        return default
    return None if choice.speed == "max" else float(choice.speed)


def market_choice_resolve(
    *, user_id: int, choice: MarketChoice | None, capital: Decimal
) -> tuple[dict[str, Any] | None, ClockSettings | None]:
    """What simulator_app.services.simulator_start keeps of the choice: (market, clock settings), or
    (None, None) for the shared feed; `capital` is the cash of the account it trades (a run report's
    start). Raises the standard errors (docs/replay.md)."""
    if choice is None or choice.source == "shared":
        if choice is not None:
            for name in (*REPLAY_ONLY, "seed", "speed", "paused", "lockstep"):
                if getattr(choice, name) is not None:
                    raise _invalid(name, "the shared feed takes no other field: it has no clock of yours")
        return None, None
    seed = choice.seed if choice.seed is not None else secrets.randbits(31)
    if choice.source == "synthetic":
        for name in REPLAY_ONLY:
            if getattr(choice, name) is not None:
                raise _invalid(name, "only a replay takes it")
        default_speed = min(MAX_SPEED, max(MIN_SPEED, float(settings.MARKET_TIME_SCALE)))
        clock = ClockSettings(
            speed=_speed(choice, default_speed), paused=bool(choice.paused), lockstep=bool(choice.lockstep)
        )
        return {"source": "synthetic", "seed": seed, "createdMs": now_ms(), "capital": str(capital)}, clock
    return _replay(user_id, choice, seed) | {"capital": str(capital)}, ClockSettings(
        speed=_speed(choice, MIN_SPEED),
        paused=True if choice.paused is None else choice.paused,
        lockstep=bool(choice.lockstep),
    )


def _replay(user_id: int, choice: MarketChoice, seed: int) -> dict[str, Any]:
    if choice.datasetId is None:
        raise _invalid("datasetId", "a replay needs a dataset (GET /api/market/datasets/)")
    dataset = datasets.dataset_for_user(user_id=user_id, dataset_id=int(choice.datasetId))
    ranges = {entry["symbol"]: entry for entry in dataset.symbols}
    symbols = sorted(set(choice.symbols)) if choice.symbols else sorted(ranges)
    missing = [symbol for symbol in symbols if symbol not in ranges]
    if missing:
        raise _invalid(
            "symbols", f"dataset {dataset.pk} has no {', '.join(missing)} (it has {', '.join(sorted(ranges))})"
        )
    first = min(ranges[s]["firstAt"] for s in symbols)
    last = max(ranges[s]["lastAt"] for s in symbols)
    start = first if choice.start is None else choice.start
    end = last if choice.end is None else choice.end
    if start > end:
        raise _invalid("start", f"start {start} is after end {end}")
    bars = datasets.dataset_bar_times(dataset_id=dataset.pk, symbols=symbols, start_ms=start, end_ms=end)
    if bars == 0:
        raise ProtocolError(
            DatasetCode.RANGE_OUTSIDE_DATA,
            f"no bar of {', '.join(symbols)} from {start} to {end}; the data runs from {first} to {last}",
            details=[ErrorDetail(field="market.start", problem=f"the data runs from {first} to {last}")],
        )
    _ensure_instruments(dataset.pk, symbols)
    return {
        "source": "replay",
        "datasetId": str(dataset.pk),
        "symbols": symbols,
        "start": max(start, first),
        "end": min(end, last),
        "seed": seed,
        "bars": bars,
    }


def _ensure_instruments(dataset_id: int, symbols: list[str]) -> None:
    """An instrument for each replayed symbol that has none, kept out of the shared feed (inactive)."""
    known = set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
    for symbol in symbols:
        if symbol in known:
            continue
        first = datasets.dataset_first_close(dataset_id=dataset_id, symbol=symbol)
        Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "name": f"{symbol} (replayed)",
                "tick_size": replay_tick_size(first),
                "start_price": first,
                "is_active": False,
            },
        )
