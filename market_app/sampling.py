"""The equity sampler inside every simulator worker: on a feed tick, at most once every
EQUITY_SAMPLE_INTERVAL_S (measured on the ticks' own timestamps), one sample for each user whose
simulator runs here, written in one insert, and their daily loss limits and margin calls watched at it. Nothing
happens per connection, and a worker with no running simulator writes nothing. Samples older than
EQUITY_SAMPLE_RETENTION_DAYS are deleted about once an hour, after a lease renewal."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from market_app import selectors, services
from market_app.events import MarketTickEvent
from market_app.prices import Quote
from simulator_app.simulation_run import SimulationRun

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 3_600.0


def _sample(users: list[int], quotes: dict[str, Quote], seq: int, at: datetime) -> int:
    """The samples, then the accounts watched at them (one trip to a database thread)."""
    written = services.equity_samples_record(user_ids=users, quotes=quotes, tick_seq=seq, at=at)
    day = selectors.feed_day(seq)
    services.daily_losses_watch(user_ids=users, quotes=quotes, day=day)
    services.margin_calls_watch(user_ids=users, quotes=quotes, at=at)
    services.margin_accruals_charge(user_ids=users, quotes=quotes, day=day, at=at)
    return written


class EquitySampler:
    def __init__(self, *, interval_s: int | None = None) -> None:
        self.interval_ms = 1_000 * (interval_s if interval_s is not None else settings.EQUITY_SAMPLE_INTERVAL_S)
        self.last_sample_ms: int | None = None
        self.next_prune = 0.0

    def due(self, timestamp_ms: int) -> bool:
        return self.last_sample_ms is None or timestamp_ms - self.last_sample_ms >= self.interval_ms

    async def on_tick(self, event: MarketTickEvent, quotes: dict[str, Quote], runs: Iterable[SimulationRun]) -> int:
        """Sample the running users' equity if the interval has passed; returns how many samples were written."""
        if not self.due(event["timestamp"]):
            return 0
        users = sorted({run.user_id for run in runs if run.is_running})
        if not users:
            return 0
        self.last_sample_ms = event["timestamp"]
        at = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
        try:
            written: int = await database_sync_to_async(_sample)(users, quotes, event["seq"], at)
            return written
        except DatabaseError:
            # The curve misses a point; matching goes on.
            logger.exception("equity samples of %d users at tick %d not written", len(users), event["seq"])
            return 0

    async def prune_if_due(self) -> int:
        if time.monotonic() < self.next_prune:
            return 0
        self.next_prune = time.monotonic() + PRUNE_EVERY_S
        cutoff = timezone.now() - timedelta(days=settings.EQUITY_SAMPLE_RETENTION_DAYS)
        try:
            pruned: int = await database_sync_to_async(services.equity_samples_prune)(before=cutoff)
            return pruned
        except DatabaseError:
            logger.exception("old equity samples not pruned")
            return 0
