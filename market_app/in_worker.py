"""The market's part in every simulator worker: the open orders of the users whose simulators the
worker runs, matched against every feed tick with the fills applied through market_app.services;
the shared price feed's producer (market_app.feed); the equity samples (market_app.sampling).

The worker tells the market about its life with the signals of simulator_app.signals, which
market_app.receivers turns into the calls below. The market listens on a channel of its own, in
the ticks group and in the group order hints for this worker go to (groups.worker_orders_group).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, cast

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from market_app import selectors, services
from market_app.accounting import OpenOrder
from market_app.events import MarketTickEvent, OrdersChangedCommand, OwnAckCommand
from market_app.feed import FeedProducer
from market_app.groups import ticks_group, worker_orders_group
from market_app.liquidity import DEFAULT_LIQUIDITY, Book, book_of
from market_app.marketdata import SymbolLiquidity, WireBooks, books_of_event, replay_tick_size
from market_app.matcher import SymbolMarket, match_tick
from market_app.own_market import OwnMarkets
from market_app.price_stream import quote_of_wire
from market_app.prices import Quote
from market_app.realism import DEFAULT_PROFILE, PROFILES, realism_of
from market_app.sampling import EquitySampler
from sessions_app.realtime.process import start_process_task
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker, listen, own_database_thread

logger = logging.getLogger(__name__)


def quotes_of(event: MarketTickEvent) -> dict[str, Quote]:
    return {symbol: quote_of_wire(wire) for symbol, wire in event["symbols"].items()}


class Markets:
    """Each symbol's tick and book under one profile: the books the tick carries (the ones the user's
    quotes show), or, from a producer that sends none, the same model computed here."""

    def __init__(self, seed: int, liquidity: dict[str, SymbolLiquidity]) -> None:
        self.seed = seed
        self.liquidity = liquidity

    def of_event(
        self, books_by_profile: WireBooks, seq: int, quotes: dict[str, Quote], profile: str
    ) -> dict[str, SymbolMarket]:
        """`books_by_profile`: the tick's books, decoded once (market_app.marketdata.books_of_event)."""
        books = books_by_profile.get(profile)
        if not books or books.keys() != quotes.keys():
            return self.of_tick(quotes, seq, profile)
        return {
            symbol: SymbolMarket(price=quote.price, volume=quote.volume, book=Book.from_wire(books[symbol]))
            for symbol, quote in quotes.items()
        }

    def of_tick(self, quotes: dict[str, Quote], seq: int, profile: str) -> dict[str, SymbolMarket]:
        realism = realism_of(profile)
        markets = {}
        for symbol, quote in quotes.items():
            setting = self.liquidity.get(symbol) or SymbolLiquidity(replay_tick_size(quote.price), DEFAULT_LIQUIDITY)
            book = book_of(
                price=quote.price,
                tick_size=setting.tick_size,
                params=setting.params,
                realism=realism,
                seed=self.seed,
                seq=seq,
                symbol=symbol,
                volume=quote.volume,
            )
            markets[symbol] = SymbolMarket(price=quote.price, volume=quote.volume, book=book)
        return markets


def profile_of_run(run: SimulationRun) -> str:
    """The realism profile a run's user trades with (the seam the market's quotes and fills read)."""
    return run.profile if run.profile in PROFILES else DEFAULT_PROFILE.value


def markets_from_database() -> Markets:
    return Markets(selectors.feed_seed(), selectors.liquidity_of_instruments(selectors.active_instruments()))


class MarketInWorker:
    """The market's part in one worker (market_app.receivers starts and stops it with the worker)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.open_orders: dict[int, list[OpenOrder]] = {}  # by user, for the users of the worker's runs
        self.markets: Markets | None = None  # the instruments' book settings, read at the first tick
        self.feed = FeedProducer(worker.worker_id)
        self.sampler = EquitySampler()
        # The runs with a market of their own (a replay, a synthetic walk).
        self.own = OwnMarkets(worker, self.open_orders)
        self.channel = ""
        self._task: asyncio.Task[None] | None = None
        self._own_task: asyncio.Task[None] | None = None

    @property
    def groups(self) -> tuple[str, ...]:
        return (ticks_group(), worker_orders_group(self.worker.worker_id))

    async def start(self) -> None:
        self.channel = await get_channel_layer().new_channel()
        self.own.ack_channel = self.channel
        await self._join_groups()
        # Matching must not queue behind the other database work of a daphne process.
        self._task = start_process_task(
            own_database_thread(listen(self.channel, self.on_message)), name="market-in-worker"
        )
        self._own_task = start_process_task(own_database_thread(self.own.run()), name="own-markets")

    async def _join_groups(self) -> None:
        for group in self.groups:
            try:
                await get_channel_layer().group_add(group, self.channel)
            except Exception:
                logger.exception("the market in worker %s could not join %s; retrying", self.worker.worker_id, group)

    async def stop(self, *, hand_over: bool) -> None:
        """With hand_over, release the feed for another worker at once (else its lease lapses)."""
        for task in (self._task, self._own_task):
            if task is not None:
                task.cancel()
        await self.feed.stop(release=hand_over)
        layer = get_channel_layer()
        for group in self.groups:
            with contextlib.suppress(Exception):
                await layer.group_discard(group, self.channel)
        for task in (self._task, self._own_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- What arrives on its channel ---------------------------------------------------------------

    async def on_message(self, message: dict[str, Any]) -> None:
        # The channel layer hands over plain dicts, typed by services.feed_advance and services._orders_changed.
        if message["type"] == "market.tick":
            await self.on_tick(cast(MarketTickEvent, message))
        elif message["type"] == "market.orders_changed":
            await self.on_orders_changed(cast(OrdersChangedCommand, message))
        elif message["type"] == "market.own_ack":
            await self.own.acknowledge(cast(OwnAckCommand, message))

    async def on_tick(self, event: MarketTickEvent) -> None:
        """Match every running simulator's user against the tick; drop the runs whose lease turned
        out lost (another worker took them over and matches them); sample the users' equity."""
        shared = [run for run in self.worker.runs.values() if not run.own_market]
        for run in await self.match(event, shared):
            self.worker.drop(run.simulator_id)
        await self.sampler.on_tick(event, quotes_of(event), shared)

    async def on_orders_changed(self, hint: OrdersChangedCommand) -> None:
        if any(run.user_id == hint["userId"] for run in self.worker.runs.values()):
            await self.reload([hint["userId"]])

    # --- What the worker tells it (market_app.receivers) --------------------------------------------

    async def run_started(self, run: SimulationRun) -> None:
        await self.reload([run.user_id])
        if run.own_market:
            await self.own.add(run)

    async def clock_changed(self, run: SimulationRun) -> None:
        # The orders placed before a step, seek or resume trade its first bar, with their prices on its
        # path: read first, not left to the hint that may come later (a limit buy then traded the rest
        # of the bar's path after a fill had read it, and filled at the low below its limit).
        await self.reload([run.user_id])
        self.own.clock_changed(run)

    async def leases_renewed(self) -> None:
        users = {run.user_id for run in self.worker.runs.values()}
        for user_id in set(self.open_orders) - users:
            del self.open_orders[user_id]
        self.markets = None  # the instruments' book settings, read again at the next tick
        await self.reload(users)  # catches an order whose hint was lost
        own = {run.user_id for run in self.worker.runs.values() if run.own_market}
        if own:  # a daily loss limit set or cleared since
            self.own.losses_watched(own, await database_sync_to_async(selectors.daily_loss_watched)(list(own)))
        await self.feed.maintain()
        await self.sampler.prune_if_due()
        await self._join_groups()  # memberships expire in the embedded layer (after a day)

    # --- Matching ------------------------------------------------------------------------------------

    async def reload(self, user_ids: Iterable[int]) -> None:
        users = list(set(user_ids))
        if users:
            self.open_orders.update(await database_sync_to_async(services.open_orders_for_matching)(users))

    async def match(self, event: MarketTickEvent, runs: Iterable[SimulationRun]) -> list[SimulationRun]:
        """Match each running simulator's user against the tick. Returns the runs whose lease turned out lost."""
        quotes = quotes_of(event)
        seq, stamp = event["seq"], event["timestamp"]
        if self.markets is None:
            self.markets = await database_sync_to_async(markets_from_database)()
        markets = self.markets  # a renewal meanwhile sets the attribute back to None
        by_profile: dict[str, dict[str, SymbolMarket]] = {}
        wire_books: WireBooks | None = None
        lost = []
        for run in runs:
            orders = self.open_orders.get(run.user_id)
            run.last_tick_seq = seq
            if not run.is_running or not orders:
                continue
            profile = profile_of_run(run)
            if profile not in by_profile:
                if wire_books is None:
                    wire_books = books_of_event(event)
                by_profile[profile] = markets.of_event(wire_books, seq, quotes, profile)
            outcome = match_tick(
                orders, by_profile[profile], tick_seq=seq, tick_ms=stamp, frictionless=realism_of(profile).frictionless
            )
            if not outcome:
                continue
            remaining = await database_sync_to_async(services.fills_apply)(
                simulator_id=run.simulator_id,
                worker_id=self.worker.worker_id,
                epoch=run.epoch,
                user_id=run.user_id,
                fills=outcome.fills,
                changes=outcome.changes,
                expiries=outcome.expiries,
            )
            if remaining is None:
                lost.append(run)
            else:
                self.open_orders[run.user_id] = remaining
        return lost
