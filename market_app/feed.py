"""The producer of the one shared price feed. Every simulator worker runs a
FeedProducer (market_app.in_worker); the one holding the feed's lease computes each
tick once, persists it, and publishes it to the ticks group. If it dies, another takes
over from the persisted tick (a seeded random walk continues exactly as it would have)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from market_app import selectors, services
from market_app.bar_files import load_bars
from market_app.marketdata import MarketDataBuilder, SymbolLiquidity
from market_app.models import Instrument
from market_app.prices import InstrumentSpec, PriceSource, Quote, RandomWalkSource, ReplaySource
from market_app.services import FeedClaim
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.process import start_process_task
from simulator_app.worker import own_database_thread

logger = logging.getLogger(__name__)

INSTRUMENT_RELOAD_INTERVAL_S = 5.0
CANDLE_PRUNE_INTERVAL_S = 60.0


def instrument_specs(instruments: list[Instrument]) -> tuple[InstrumentSpec, ...]:
    return tuple(
        InstrumentSpec(
            symbol=i.symbol,
            tick_size=i.tick_size,
            start_price=i.start_price,
            volatility=i.volatility,
            drift=i.drift,
            base_volume=max(1, i.base_volume),
        )
        for i in instruments
    )


def build_source(specs: tuple[InstrumentSpec, ...], seed: int) -> PriceSource:
    if settings.MARKET_SOURCE == "replay":
        return ReplaySource(load_bars(settings.MARKET_REPLAY_FILE))
    return RandomWalkSource(specs, seed=seed, tick_ms=settings.MARKET_TICK_MS, time_scale=settings.MARKET_TIME_SCALE)


class FeedProducer:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.claim: FeedClaim | None = None
        self.seq = 0
        self.quotes: dict[str, Quote] = {}
        self._specs: tuple[InstrumentSpec, ...] = ()
        self._source: PriceSource | None = None
        self._liquidity: dict[str, SymbolLiquidity] = {}
        self._market: MarketDataBuilder | None = None
        self._next_prune = 0.0
        self._task: asyncio.Task[None] | None = None
        self._next_reload = 0.0

    @property
    def producing(self) -> bool:
        return self._task is not None and not self._task.done()

    async def maintain(self) -> None:
        """Called every lease renewal: take the feed if it is free, renew it if ours, follow instrument edits."""
        if self.claim is None:
            claim = await database_sync_to_async(services.feed_claim)(worker_id=self.worker_id)
            if claim is not None:
                await self._start(claim)
            return
        if not await database_sync_to_async(services.feed_renew)(worker_id=self.worker_id, epoch=self.claim.epoch):
            self._lost()
            return
        if time.monotonic() >= self._next_reload:
            await self._load_instruments(self.claim.seed)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + CANDLE_PRUNE_INTERVAL_S
            await database_sync_to_async(services.candles_prune)(now=now_ms())

    async def _load_instruments(self, seed: int) -> None:
        self._next_reload = time.monotonic() + INSTRUMENT_RELOAD_INTERVAL_S
        instruments = await database_sync_to_async(selectors.active_instruments)()
        specs = instrument_specs(instruments)
        if specs != self._specs or self._source is None:
            self._specs = specs
            self._source = build_source(specs, seed)
        self._liquidity = selectors.liquidity_of_instruments(instruments)
        if self._market is None or self._market.seed != seed:
            self._market = MarketDataBuilder(self._liquidity, seed=seed)
        else:
            self._market.follow(self._liquidity)

    async def _start(self, claim: FeedClaim) -> None:
        self._source = None
        self._market = None  # open candles start afresh with this claim
        # Should this fail, the claim is dropped here and taken again once its lease lapses.
        await self._load_instruments(claim.seed)
        assert self._source is not None
        self.claim = claim
        self.seq = claim.seq
        self.quotes = claim.quotes or self._source.first_tick()
        logger.info("market feed produced by %s from tick %d (seed %d)", self.worker_id, self.seq, claim.seed)
        # Ticks must not queue behind other database work of the process.
        self._task = start_process_task(own_database_thread(self._run()), name="market-feed")

    def _lost(self) -> None:
        logger.warning("market feed lease lost by %s; another worker produces it", self.worker_id)
        if self._task is not None:
            self._task.cancel()
        self.claim = None

    async def _run(self) -> None:
        interval = settings.MARKET_TICK_MS / 1000
        next_at = time.monotonic()
        while self.claim is not None:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > interval * 5:
                next_at = time.monotonic()  # far behind (a stall): skip ahead instead of bursting
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("market tick %d failed; retrying on the next one", self.seq + 1)

    async def _tick(self) -> None:
        assert self.claim is not None and self._source is not None
        seq = self.seq + 1
        quotes = self._source.next_tick(seq, self.quotes)
        assert self._market is not None
        market = self._market.tick(seq=seq, timestamp=now_ms(), quotes=quotes)
        advanced = await database_sync_to_async(services.feed_advance)(
            worker_id=self.worker_id, epoch=self.claim.epoch, seq=seq, quotes=quotes, market=market
        )
        if not advanced:
            self._lost()
            return
        self.seq, self.quotes = seq, quotes

    async def stop(self, *, release: bool) -> None:
        self.claim = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if release:
            # Whatever this worker holds, recorded or not: a claim can commit while `maintain` is canceled.
            await database_sync_to_async(services.feed_release)(worker_id=self.worker_id)
