"""The market inside every simulator worker (a simulator_app.extensions.WorkerExtension): the
open orders of the users whose simulators the worker runs, matched against every feed tick with
fills applied through market_app.services, and the shared price feed's producer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import cast

from channels.db import database_sync_to_async

from market_app import selectors, services
from market_app.accounting import OpenOrder
from market_app.events import MarketTickEvent
from market_app.feed import FeedProducer
from market_app.groups import ticks_group
from market_app.liquidity import DEFAULT_LIQUIDITY, Book, book_of
from market_app.marketdata import SymbolLiquidity, WireBooks, books_of_event, replay_tick_size
from market_app.matcher import SymbolMarket, match_tick
from market_app.prices import Quote
from market_app.realism import DEFAULT_PROFILE, PROFILES, realism_of
from market_app.sampling import EquitySampler
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker

logger = logging.getLogger(__name__)


def quotes_of(event: MarketTickEvent) -> dict[str, Quote]:
    quotes = {}
    for symbol, wire in event["symbols"].items():
        price = Decimal(repr(wire["price"]))
        quotes[symbol] = Quote(price=price, open=price - Decimal(repr(wire["change"])), volume=int(wire["volume"]))
    return quotes


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


class TradingDesk:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.open_orders: dict[int, list[OpenOrder]] = {}
        self.markets: Markets | None = None

    async def reload(self, user_ids: Iterable[int]) -> None:
        users = list(set(user_ids))
        if users:
            self.open_orders.update(await database_sync_to_async(services.open_orders_for_matching)(users))

    def forget(self, user_ids: set[int]) -> None:
        for user_id in list(self.open_orders):
            if user_id not in user_ids:
                del self.open_orders[user_id]

    async def on_tick(self, event: MarketTickEvent, runs: Iterable[SimulationRun]) -> list[SimulationRun]:
        """Match every running simulator's user against the tick. Returns runs whose lease turned out lost."""
        quotes = quotes_of(event)
        seq, stamp = event["seq"], event["timestamp"]
        if self.markets is None:
            self.markets = await database_sync_to_async(markets_from_database)()
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
                by_profile[profile] = self.markets.of_event(wire_books, seq, quotes, profile)
            outcome = match_tick(
                orders, by_profile[profile], tick_seq=seq, tick_ms=stamp, frictionless=realism_of(profile).frictionless
            )
            if not outcome:
                continue
            remaining = await database_sync_to_async(services.fills_apply)(
                simulator_id=run.simulator_id,
                worker_id=self.worker_id,
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


class MarketInWorker:
    """What the market does in a simulator worker: match its users' orders, produce the feed."""

    groups: tuple[str, ...] = (ticks_group(),)

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.desk = TradingDesk(worker.worker_id)
        self.feed = FeedProducer(worker.worker_id)
        self.sampler = EquitySampler()

    async def on_command(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "market.tick":
            # The channel layer hands over plain dicts; this type is sent only by the relay, as a MarketTickEvent.
            tick = cast(MarketTickEvent, message)
            for run in await self.desk.on_tick(tick, list(self.worker.runs.values())):
                self.worker.drop(run.simulator_id)
            await self.sampler.on_tick(tick, quotes_of(tick), self.worker.runs.values())
        elif kind == "market.orders_changed" and any(
            run.user_id == message["userId"] for run in self.worker.runs.values()
        ):
            await self.desk.reload([message["userId"]])

    async def run_started(self, user_id: int) -> None:
        await self.desk.reload([user_id])

    async def renewed(self) -> None:
        users = {run.user_id for run in self.worker.runs.values()}
        self.desk.forget(users)
        self.desk.markets = None  # the instruments' book settings, read again at the next tick
        await self.desk.reload(users)  # catches an order whose hint was lost
        await self.feed.maintain()
        await self.sampler.prune_if_due()

    async def stop(self, *, hand_over: bool) -> None:
        # The worker bounds this; a feed that does not stop in time lets its lease lapse.
        await self.feed.stop(release=hand_over)

    def __repr__(self) -> str:
        return "the market (feed and matching)"
