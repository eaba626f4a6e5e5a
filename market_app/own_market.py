"""A simulator's own market in the worker running it: a replay of a dataset's bars, or a random walk from
the trader's seed, played on the trader's clock (simulator_app.clock), its user's orders matched along
each bar's path, its prices sent to that user's connections alone (docs/replay.md).

A bar is matched as backtesting engines do: its prices are taken to pass from the open to the extreme
nearer the open, then the other extreme, then the close (`bar_path`), each point a tick of its own with
a book synthesised around it under the run's realism profile and a share of the bar's volume. A stop
crossed by a gap triggers at the open and trades against the open's book: gaps fill at the open. An
order placed while a bar is shown trades from the next bar on (a bar is the latency), so a replay's
fills depend on its bars and orders alone, not on the speed it was played at.

No database on the way of a bar: the bars are read once when the worker takes the simulator, and
only a bar that fills or ends an order writes (market_app.services.fills_apply).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import json
import logging
import math
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from market_app import datasets, selectors, services
from market_app.accounting import OpenOrder
from market_app.candles import CandleBuilder
from market_app.events import OwnAckCommand
from market_app.feed import instrument_specs
from market_app.liquidity import Book, book_of, wire_books_of_tick
from market_app.marketdata import SymbolLiquidity, Tape, book_input, top_to_wire
from market_app.matcher import Expiry, SymbolMarket, TickOutcome, match_tick
from market_app.models import OrderSide, OrderType, TimeInForce
from market_app.prices import InstrumentSpec, Quote, RandomWalkSource
from market_app.realism import profile_name, realism_of
from sessions_app.realtime.message_base import now_ms
from simulator_app import services as simulator_services
from simulator_app.clock import Clock
from simulator_app.messages import ClockUpdate, ClockView, MarketView
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker

logger = logging.getLogger(__name__)

BURST = 64  # bars played at `max` before letting the worker's other work run
STARTING_POLL_S = 0.05
PATH_SEQS = 1_000  # tick numbers a bar's path may take (its fills and books are numbered within them)
MAX_SPEED_SEND_INTERVAL_S = 0.02  # at `max`, the newest bar is sent at most this often (every bar is matched)


@dataclass(frozen=True)
class OwnBar:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


def bar_path(bar: OwnBar, through: Sequence[Decimal] = ()) -> tuple[Decimal, ...]:
    """The prices a bar passes through: the open, the extreme nearer the open, the other one, the close
    (a tie goes low first in a rising bar, high first in a falling one), and on the way each price of
    `through` (the open orders' limits and stops) that a leg crosses; a price repeated at once, once."""
    nearer_high = bar.high - bar.open < bar.open - bar.low
    if bar.high - bar.open == bar.open - bar.low:
        nearer_high = bar.close < bar.open
    corners = (bar.open, bar.high, bar.low, bar.close) if nearer_high else (bar.open, bar.low, bar.high, bar.close)
    path = [corners[0]]
    for corner in corners[1:]:
        start = path[-1]
        low, high = min(start, corner), max(start, corner)
        crossed = sorted({p for p in through if low < p < high}, reverse=corner < start)
        for price in (*crossed, corner):
            if price != path[-1]:
                path.append(price)
    return tuple(path)


def trade_trigger(order: OpenOrder) -> tuple[str, Decimal] | None:
    """What a bar must reach to change the order at all: ("high", p), a high at p or above, or
    ("low", p), a low at p or below; None: any bar of its symbol. Not reached: the order's price is
    outside the bar and it waits in its queue already (or waits for its stop), so matching it would
    change nothing. A trailing stop follows every price, and a market order or one new to the book
    always takes its turn."""
    kind = order.order_type
    if kind == OrderType.TRAILING_STOP or kind == OrderType.MARKET:
        return None
    buy = order.side == OrderSide.BUY
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
        assert order.stop_price is not None
        return ("high", order.stop_price) if buy else ("low", order.stop_price)
    if order.limit_price is None:  # a triggered stop: a market order now
        return None
    if order.queue_ahead is None:  # new to the book: it joins the queue, or takes what is marketable
        return None
    return ("low", order.limit_price) if buy else ("high", order.limit_price)


class BarOrders:
    """A user's open orders as a bar trades them (each known now is active: a bar is its latency,
    whatever the wall clock says; each ends by the bars' day, not the shared feed's ticks), indexed
    by `trade_trigger` so a bar finds the ones it may change by bisection: a replay at `max` plays
    thousands of bars a second past resting orders that most bars do not reach."""

    def __init__(self, orders: list[OpenOrder]) -> None:
        self.source = orders
        self.orders = [dataclasses.replace(o, active_at_ms=0, expires_seq=None) for o in orders]
        self.day_orders = [o for o in orders if o.time_in_force == TimeInForce.DAY]
        self._any: dict[str, list[int]] = {}  # symbol -> positions of the orders any bar may change
        highs: dict[str, list[tuple[Decimal, int]]] = {}
        lows: dict[str, list[tuple[Decimal, int]]] = {}
        for position, order in enumerate(self.orders):
            trigger = trade_trigger(order)
            if trigger is None:
                self._any.setdefault(order.symbol, []).append(position)
            else:
                (highs if trigger[0] == "high" else lows).setdefault(order.symbol, []).append((trigger[1], position))
        self._highs = {symbol: _by_price(entries) for symbol, entries in highs.items()}
        self._lows = {symbol: _by_price(entries) for symbol, entries in lows.items()}

    def tradable(self, bars: Mapping[str, OwnBar], ended: set[uuid.UUID]) -> list[OpenOrder]:
        """The orders the bars may change (in the orders' own order), less the day orders they ended."""
        hits: list[int] = []
        for symbol, bar in bars.items():
            hits += self._any.get(symbol, ())
            if symbol in self._highs:
                prices, positions = self._highs[symbol]
                hits += positions[: bisect.bisect_right(prices, bar.high)]
            if symbol in self._lows:
                prices, positions = self._lows[symbol]
                hits += positions[bisect.bisect_left(prices, bar.low) :]
        return [self.orders[i] for i in sorted(hits) if self.orders[i].id not in ended]


def _by_price(entries: list[tuple[Decimal, int]]) -> tuple[list[Decimal], list[int]]:
    entries.sort()
    return [price for price, _ in entries], [position for _, position in entries]


def path_volumes(volume: int, points: int) -> list[int]:
    """A bar's volume shared by the points of its path (the rest of the division to the close)."""
    share = volume // points
    return [share] * (points - 1) + [volume - share * (points - 1)]


class ReplayBars:
    """A dataset's bars in a range, by time: at each time, the symbols with a bar then."""

    def __init__(self, times: Sequence[int], bars: Sequence[dict[str, OwnBar]]) -> None:
        self.times = list(times)
        self.bars = list(bars)

    @property
    def length(self) -> int | None:
        return len(self.times)

    def time_at(self, index: int) -> int:
        return self.times[index]

    def bars_at(self, index: int, previous: Mapping[str, Quote]) -> Mapping[str, OwnBar]:
        return self.bars[index]  # shared by the runs of the range (bars_of_market): read only

    def index_at_or_after(self, time_ms: int) -> int:
        return min(bisect.bisect_left(self.times, time_ms), len(self.times) - 1)


class SyntheticBars:
    """A random walk of the instruments from the trader's seed: one tick of the shared feed's model a bar,
    MARKET_TICK_MS x MARKET_TIME_SCALE of market time apart, from the simulator's creation on."""

    length = None

    def __init__(self, specs: tuple[InstrumentSpec, ...], *, seed: int, start_ms: int) -> None:
        self.walk = RandomWalkSource(
            specs, seed=seed, tick_ms=settings.MARKET_TICK_MS, time_scale=settings.MARKET_TIME_SCALE
        )
        self.start_ms = start_ms
        self.step_ms = max(1, round(settings.MARKET_TICK_MS * settings.MARKET_TIME_SCALE))

    def time_at(self, index: int) -> int:
        return self.start_ms + index * self.step_ms

    def bars_at(self, index: int, previous: Mapping[str, Quote]) -> dict[str, OwnBar]:
        quotes = self.walk.first_tick() if index == 0 or not previous else self.walk.next_tick(index, previous)
        return {s: OwnBar(q.price, q.price, q.price, q.price, q.volume) for s, q in quotes.items()}

    def index_at_or_after(self, time_ms: int) -> int:
        return max(0, math.ceil((time_ms - self.start_ms) / self.step_ms))


Bars = ReplayBars | SyntheticBars


# The replays of one dataset's range on a worker share its bars (read only), loaded once while any of
# them plays: a class replaying the same day cost each simulator its own load (of 200 replays of one
# hour of seconds, a third of the worker's CPU). A dataset's bars never change; its creation time tells
# it from one stored under the same id after it was deleted.
ReplayKey = tuple[int, datetime | None, tuple[str, ...], int, int]
_replay_bars: weakref.WeakValueDictionary[ReplayKey, ReplayBars] = weakref.WeakValueDictionary()


def bars_of_market(market: Mapping[str, Any], *, created_ms: int) -> Bars:
    """The bars of a run's market (database reads: the worker calls it once, when it takes the run)."""
    if market["source"] == "replay":
        dataset_id = int(market["datasetId"])
        created = datasets.dataset_created_at(dataset_id=dataset_id)
        key = (dataset_id, created, tuple(market["symbols"]), int(market["start"]), int(market["end"]))
        shared = _replay_bars.get(key)
        if shared is None:
            shared = _replay_bars[key] = _load_replay_bars(dataset_id, *key[2:])
        return shared
    return SyntheticBars(
        instrument_specs(selectors.active_instruments()), seed=int(market["seed"]), start_ms=created_ms
    )


def _load_replay_bars(dataset_id: int, symbols: tuple[str, ...], start_ms: int, end_ms: int) -> ReplayBars:
    rows = datasets.dataset_bars_in_range(
        dataset_id=dataset_id, symbols=list(symbols), start_ms=start_ms, end_ms=end_ms
    )
    times: list[int] = []
    bars: list[dict[str, OwnBar]] = []
    for at_ms, symbol, open_, high, low, close, volume in rows:
        if not times or times[-1] != at_ms:
            times.append(at_ms)
            bars.append({})
        bars[-1][symbol] = OwnBar(open_, high, low, close, volume)
    return ReplayBars(times, bars)


class OwnMarket:
    """One run's market: where its bars stand, its last quotes, its open candles."""

    def __init__(self, run: SimulationRun, bars: Bars, liquidity: Mapping[str, SymbolLiquidity], seed: int) -> None:
        assert run.clock is not None
        self.run = run
        self.clock: Clock = run.clock
        self.bars = bars
        self.liquidity = dict(liquidity)
        self.seed = seed
        self.profile = profile_name(run.profile)
        state = run.own_state
        self.quotes: dict[str, Quote] = {s: Quote.from_state(q) for s, q in state.get("quotes", {}).items()}
        self.ticks = int(state.get("ticks", 0))  # sub-ticks matched, numbering the fills
        self.day_of_order = {uuid.UUID(key): day for key, day in state.get("dayOfOrder", {}).items()}
        self.candles = CandleBuilder()
        self.tape = Tape()  # the trades of the bars shown, one per bar with volume
        self.next_at = 0.0  # monotonic time its next bar is due
        self.report_due = True  # a clock_update is owed (taken, a request applied)
        self.last_sent = 0.0
        self.unsent: tuple[int, int] | None = None  # (index, time) of the newest bar not sent yet (at `max`)
        self._bar_orders: BarOrders | None = None  # the open orders last seen, as a bar trades them
        # A daily loss limit (OwnMarkets.watch_losses): whether its account has one, the market day and
        # bar time its equity was last watched at.
        self.watch_losses = False
        self.loss_day = ""
        self.loss_watched_ms: int | None = None
        # A margin account's margin calls and daily charges, watched at the same bar closes.
        self.on_margin = False

    # --- The clock ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """It has a bar to show once its time comes (not paused, finished or waiting for an acknowledgement)."""
        return (self.clock.playing or self.clock.position < 0) and not self.clock.waiting

    def due(self, now: float) -> bool:
        return self.next_at <= now and self.ready

    def schedule(self, now: float) -> None:
        """When the bar after the one shown is due, at the clock's speed."""
        clock = self.clock
        if not clock.playing:
            self.next_at = math.inf
            return
        if clock.steps_left or clock.seek_ms is not None or clock.settings.speed is None:
            self.next_at = now
            return
        following = clock.position + 1
        if self.bars.length is not None and following >= self.bars.length:
            self.next_at = now
            return
        gap_ms = self.bars.time_at(following) - (clock.time_ms or self.bars.time_at(following))
        self.next_at = now + max(0, gap_ms) / 1000 / clock.settings.speed

    def changed(self) -> None:
        """The trader's settings changed: play from now at the new speed, and say so."""
        self.report_due = True
        self.next_at = 0.0

    # --- A bar ---------------------------------------------------------------------------------

    def next_index(self) -> int | None:
        """The bar to show next (a seek's, or the one after), or None at the end of a replay."""
        clock = self.clock
        if clock.seek_ms is not None:
            index = self.bars.index_at_or_after(clock.seek_ms)
            clock.seek_ms = None
            self.quotes, self.candles = {}, CandleBuilder()
            return index
        index = clock.position + 1
        if self.bars.length is not None and index >= self.bars.length:
            return None
        return index

    def quotes_of(self, bars: Mapping[str, OwnBar]) -> dict[str, Quote]:
        quotes = dict(self.quotes)
        for symbol, bar in bars.items():
            before = self.quotes.get(symbol)
            quotes[symbol] = Quote(price=bar.close, open=bar.open if before is None else before.open, volume=bar.volume)
        return quotes

    def markets_on_path(self, bars: Mapping[str, OwnBar], orders: Sequence[OpenOrder]) -> list[dict[str, SymbolMarket]]:
        """Each point of the paths of the orders' symbols' bars (through the orders' prices) as the markets
        of one tick (a symbol whose path is shorter sits the later points out); none without orders."""
        realism = realism_of(self.run.profile)
        prices: dict[str, list[Decimal]] = {order.symbol: [] for order in orders}
        for order in orders:
            prices[order.symbol].extend(p for p in (order.limit_price, order.stop_price) if p is not None)
        paths = {symbol: bar_path(bars[symbol], through) for symbol, through in prices.items()}
        volumes = {symbol: path_volumes(bars[symbol].volume, len(path)) for symbol, path in paths.items()}
        steps: list[dict[str, SymbolMarket]] = []
        for point in range(max((len(path) for path in paths.values()), default=0)):
            markets: dict[str, SymbolMarket] = {}
            for symbol, path in paths.items():
                if point >= len(path):
                    continue
                price, volume = path[point], volumes[symbol][point]
                setting = book_input(symbol, Quote(price, price, volume), self.liquidity)
                book: Book = book_of(
                    price=setting.price,
                    tick_size=setting.tick_size,
                    params=setting.params,
                    realism=realism,
                    seed=self.seed,
                    seq=self.ticks * PATH_SEQS + len(steps),
                    symbol=symbol,
                    volume=volume,
                )
                markets[symbol] = SymbolMarket(price=price, volume=volume, book=book)
            steps.append(markets)
        return steps

    def bar_orders(self, orders: list[OpenOrder]) -> BarOrders:
        """The user's open orders as a bar trades them, indexed once per list of them."""
        if self._bar_orders is None or self._bar_orders.source is not orders:
            self._bar_orders = BarOrders(orders)
        return self._bar_orders

    def day_expiries(self, day_orders: Sequence[OpenOrder], time_ms: int) -> list[Expiry]:
        """A `day` order ends at the first bar of a later (UTC) day than the bar it first met. Only the
        open day orders are remembered (the checkpoint carries them)."""
        day = datetime.fromtimestamp(time_ms / 1000, UTC).date().isoformat() if day_orders else ""
        remembered: dict[uuid.UUID, str] = {}
        expired = []
        for order in day_orders:
            first = remembered[order.id] = self.day_of_order.get(order.id, day)
            if first != day:
                expired.append(Expiry(order.id, "day order: the trading day ended"))
        self.day_of_order = remembered
        return expired

    def event_of(self, index: int, time_ms: int, ack_to: str) -> dict[str, Any]:
        """The bar shown last as the user's connections get it (the shape of the shared feed's
        `market.tick`): built only when it is sent, so a bar played at `max` and replaced by the next
        before it went out costs nothing here."""
        profile, quotes = self.profile, self.quotes
        inputs = {symbol: book_input(symbol, quote, self.liquidity) for symbol, quote in quotes.items()}
        books = wire_books_of_tick(inputs, seed=self.seed, seq=self.ticks * PATH_SEQS, profiles=(profile,))
        return {
            "type": "market.own_tick",
            "simulatorId": str(self.run.simulator_id),
            "seq": index + 1,
            "timestamp": time_ms,
            "symbols": {symbol: quote.to_wire() for symbol, quote in quotes.items()},
            "tops": json.dumps(
                {profile: {s: top_to_wire(b) for s, b in books[profile].items()}}, separators=(",", ":")
            ),
            "books": json.dumps(books, separators=(",", ":")),
            "candles": json.dumps(self.candles.to_wire(), separators=(",", ":")),
            "prints": json.dumps(self.tape.prints(quotes), separators=(",", ":")),
            "ackTo": ack_to,
        }

    def checkpoint(self) -> None:
        self.run.own_state = {
            "quotes": {s: q.to_state() for s, q in self.quotes.items()},
            "ticks": self.ticks,
            "dayOfOrder": {str(k): v for k, v in self.day_of_order.items()},
        }
        self.run.dirty = True

    def clock_update(self) -> ClockUpdate:
        return ClockUpdate(
            simulatorId=str(self.run.simulator_id),
            clock=ClockView.of(self.clock),
            market=MarketView.of(self.run.market),
            timestamp=now_ms(),
        )


class OwnMarkets:
    """Every own market of a worker, played by one task: each bar when its clock says it is due.
    `open_orders` is the market's part's map of its users' open orders (market_app.in_worker), shared."""

    def __init__(self, worker: Worker, open_orders: dict[int, list[OpenOrder]]) -> None:
        self.worker = worker
        self.open_orders = open_orders
        self.markets: dict[uuid.UUID, OwnMarket] = {}
        self.wake = asyncio.Event()
        self.ack_channel = ""  # where clients' lock-step acknowledgements reach this worker's market part

    async def add(self, run: SimulationRun) -> None:
        created_ms = int(run.market.get("createdMs") or now_ms())
        bars, liquidity = await database_sync_to_async(_bars_and_liquidity)(run.market, created_ms)
        market = self.markets[run.simulator_id] = OwnMarket(run, bars, liquidity, seed=int(run.market["seed"]))
        market.watch_losses, market.on_margin = await database_sync_to_async(_watched)(run.user_id)
        clock = market.clock
        if clock.position >= 0 and clock.time_ms is not None and market.quotes:
            # Taken over: the bar shown last goes out again (a lock-step client acknowledges it anew).
            market.unsent = (clock.position, clock.time_ms)
        self.wake.set()

    async def acknowledge(self, ack: OwnAckCommand) -> None:
        """A client handled bar `seq` (lock-step): its orders are read first if it changed any, so the next
        bar trades them whatever the channel layer's timing."""
        market = self.markets.get(uuid.UUID(ack["simulatorId"]))
        if market is None:
            return
        if ack["ordersChanged"]:
            user_id = market.run.user_id
            self.open_orders.update(await database_sync_to_async(services.open_orders_for_matching)([user_id]))
        market.clock.acknowledged = ack["seq"]
        self.wake.set()

    def losses_watched(self, user_ids: set[int], watched: set[int]) -> None:
        """Which of `user_ids` have a daily loss limit now (read again at each lease renewal)."""
        for market in self.markets.values():
            if market.run.user_id in user_ids:
                market.watch_losses = market.run.user_id in watched

    def clock_changed(self, run: SimulationRun) -> None:
        market = self.markets.get(run.simulator_id)
        if market is not None:
            market.changed()
            self.wake.set()

    async def run(self) -> None:
        while True:
            for simulator_id in [i for i in self.markets if i not in self.worker.runs]:
                del self.markets[simulator_id]  # stopped, failed, lost or handed over
            now = time.monotonic()
            played = 0
            for market in list(self.markets.values()):
                if not market.run.is_running:
                    continue
                while market.due(now) and played < BURST:
                    await self.play(market, now)
                    played += 1
                if market.unsent is not None and (
                    not market.clock.playing or time.monotonic() - market.last_sent >= MAX_SPEED_SEND_INTERVAL_S
                ):
                    await self.flush(market)
                if market.report_due:
                    await self.report(market)
            await self.idle(played)

    async def idle(self, played: int) -> None:
        """Wait for the next bar due, a clock change, or a new market; always give the loop a turn."""
        running = [m for m in self.markets.values() if m.run.is_running]
        upcoming = (m.next_at for m in running if m.ready)
        wait = 0.0 if played >= BURST else min(upcoming, default=math.inf) - time.monotonic()
        if len(running) < len(self.markets):
            wait = min(wait, STARTING_POLL_S)  # the worker marks a taken simulator running without telling us
        if wait <= 0:
            await asyncio.sleep(0)
            return
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), None if math.isinf(wait) else wait)

    async def play(self, market: OwnMarket, now: float) -> None:
        """Show the next bar: match the user's orders along it, send it, move the clock."""
        clock = market.clock
        index = market.next_index()
        if index is None:
            clock.finished, clock.steps_left = True, 0
            market.report_due = True
            market.schedule(now)
            await self.flush(market)
            return
        time_ms = market.bars.time_at(index)
        bars = market.bars.bars_at(index, market.quotes)
        if clock.position >= 0:  # the first bar of a replay is shown before anyone could trade
            await self.match(market, bars, time_ms)
        opening, market.quotes = market.quotes, market.quotes_of(bars)
        if market.watch_losses or market.on_margin:
            await self.watch_account(market, opening, time_ms)
        market.ticks += 1
        last = market.bars.length is not None and index == market.bars.length - 1
        stepping = clock.steps_left > 0
        clock.shown(index, time_ms, last=last)
        if last or (stepping and clock.steps_left == 0):
            market.report_due = True
        market.checkpoint()
        market.candles.update(time_ms, market.quotes)
        market.unsent = (index, time_ms)
        conflated = clock.settings.speed is None and clock.playing and not clock.settings.lockstep
        if not conflated or now - market.last_sent >= MAX_SPEED_SEND_INTERVAL_S:
            await self.flush(market)
        market.schedule(now)

    async def watch_account(self, market: OwnMarket, opening: Mapping[str, Quote], time_ms: int) -> None:
        """A daily loss limit, and a margin account's margin calls and charges, on the bars' days
        (selectors.bar_day) and time: a day starts at the account's equity at the previous bar's close,
        and the account is watched at the bars' closes, as often as the shared feed's equity samples
        (EQUITY_SAMPLE_INTERVAL_S of bar time) and at each new day."""
        day = selectors.bar_day(market.run.simulator_id, time_ms)
        user_id = market.run.user_id
        new_day = day != market.loss_day
        last = market.loss_watched_ms
        if not new_day and last is not None and time_ms - last < settings.EQUITY_SAMPLE_INTERVAL_S * 1000:
            return
        market.loss_day, market.loss_watched_ms = day, time_ms
        if market.watch_losses:
            watch = database_sync_to_async(services.daily_losses_watch)
            if new_day and opening:
                await watch(user_ids=[user_id], quotes=opening, day=day)  # the day's start
            if await watch(user_ids=[user_id], quotes=market.quotes, day=day):
                self.open_orders[user_id] = []  # canceled for the rest of the day
        if market.on_margin:
            at = datetime.fromtimestamp(time_ms / 1000, UTC)
            liquidated = await database_sync_to_async(services.margin_calls_watch)(
                user_ids=[user_id], quotes=market.quotes, at=at
            )
            if liquidated:  # its orders: the next bar trades them
                self.open_orders.update(await database_sync_to_async(services.open_orders_for_matching)([user_id]))
            if new_day:
                await database_sync_to_async(services.margin_accruals_charge)(
                    user_ids=[user_id], quotes=market.quotes, day=day, at=at
                )

    async def flush(self, market: OwnMarket) -> None:
        if market.unsent is not None:
            (index, time_ms), market.unsent = market.unsent, None
            market.last_sent = time.monotonic()
            event = market.event_of(index, time_ms, self.ack_channel)
            await services.own_tick_send(user_id=market.run.user_id, event=event)

    async def match(self, market: OwnMarket, bars: Mapping[str, OwnBar], time_ms: int) -> None:
        run = market.run
        known = self.open_orders.get(run.user_id)
        if not known:
            return
        book = market.bar_orders(known)
        expiries = market.day_expiries(book.day_orders, time_ms)
        ended = {expiry.order_id for expiry in expiries}
        orders = book.tradable(bars, ended)
        frictionless = realism_of(run.profile).frictionless
        for point, markets in enumerate(market.markets_on_path(bars, orders)):
            outcome = match_tick(
                orders, markets, tick_seq=market.ticks * PATH_SEQS + point, tick_ms=0, frictionless=frictionless
            )
            outcome.expiries.extend(expiries)  # the ended day orders go with the bar's first point
            expiries = []
            if outcome:
                remaining = await self.apply(market, outcome, time_ms)
                if remaining is None:
                    return
                orders = market.bar_orders(remaining).tradable(bars, ended)
                if not orders:
                    return
        if expiries:  # nothing of the bar could trade
            await self.apply(market, TickOutcome(expiries=expiries), time_ms)

    async def apply(self, market: OwnMarket, outcome: TickOutcome, time_ms: int) -> list[OpenOrder] | None:
        """Record a point's outcome; the user's open orders after it, or None when the lease was lost."""
        run = market.run
        remaining: list[OpenOrder] | None = await database_sync_to_async(services.fills_apply)(
            simulator_id=run.simulator_id,
            worker_id=self.worker.worker_id,
            epoch=run.epoch,
            user_id=run.user_id,
            fills=outcome.fills,
            changes=outcome.changes,
            expiries=outcome.expiries,
            market_at=datetime.fromtimestamp(time_ms / 1000, UTC),
        )
        if remaining is None:
            self.worker.drop(run.simulator_id)
        else:
            self.open_orders[run.user_id] = remaining
        return remaining

    async def report(self, market: OwnMarket) -> None:
        market.report_due = False
        await self.flush(market)
        try:
            await database_sync_to_async(simulator_services.simulator_clock_report)(
                user_id=market.run.user_id,
                message=market.clock_update(),
                worker_id=self.worker.worker_id,
                epoch=market.run.epoch,
                checkpoint=market.run.checkpoint(),
            )
        except Exception:
            logger.exception("could not report the clock of simulator %s", market.run.simulator_id)


def _watched(user_id: int) -> tuple[bool, bool]:
    """Whether the account the user trades has a daily loss limit, and whether it is a margin account."""
    return user_id in selectors.daily_loss_watched([user_id]), user_id in selectors.margin_traders([user_id])


def _bars_and_liquidity(market: Mapping[str, Any], created_ms: int) -> tuple[Bars, dict[str, SymbolLiquidity]]:
    bars = bars_of_market(market, created_ms=created_ms)
    symbols = market.get("symbols")
    instruments = selectors.instruments_of_symbols(symbols) if symbols else selectors.active_instruments()
    return bars, selectors.liquidity_of_instruments(instruments)
