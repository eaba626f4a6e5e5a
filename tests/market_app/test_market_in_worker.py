"""The market in a simulator worker (market_app.in_worker) against the real ORM: ticks in, the
exchange's outcome applied, the book each tick carries for the user's profile; and, in a worker
started in this process, what the worker's signals and the channel layer bring it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import TypeVar

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from market_app import receivers, services
from market_app.events import MarketTickEvent
from market_app.groups import worker_orders_group
from market_app.in_worker import MarketInWorker
from market_app.liquidity import Book, Level
from market_app.messages import OrderTicket, RiskLimits
from market_app.models import MarketFeed, Order, OrderStatus
from simulator_app import services as simulator_services
from simulator_app.clock import Clock, ClockSettings
from simulator_app.models import Simulator, SimulatorStatus
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker
from tests.market_app.test_order_types_services import trader
from tests.market_app.test_trading_services import Trader, set_prices
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]

D = Decimal
T = TypeVar("T")


def run_of(who: Trader, profile: str) -> SimulationRun:
    return SimulationRun(
        simulator_id=who.simulator_id,
        epoch=who.epoch,
        user_id=who.user_id,
        session_id=uuid.uuid4(),
        status=SimulatorStatus.RUNNING,
        profile=profile,
    )


def market_of(who: Trader, run: SimulationRun) -> MarketInWorker:
    """The market in the worker holding the trader's simulator (not started: no loops, no channel), running `run`."""
    worker = Worker(runner="inprocess")
    worker.worker_id = who.worker_id
    worker.runs[run.simulator_id] = run
    return MarketInWorker(worker)


def tick(
    seq: int, price: str, *, volume: int = 500, profile: str = "realistic", spread: str = "0.01"
) -> MarketTickEvent:
    p, s = D(price), D(spread)
    book = Book(bids=(Level(p - s, D(300)), Level(p - 2 * s, D(300))), asks=(Level(p, D(300)), Level(p + s, D(300))))
    return {
        "type": "market.tick",
        "seq": seq,
        "timestamp": 10**13 + seq,
        "symbols": {"AAPL": {"price": float(p), "change": 0.0, "volume": volume}},
        "books": json.dumps({profile: {"AAPL": book.to_wire()}}),
    }


def buy(user_id: int, **ticket: object) -> Order:
    fields: dict[str, object] = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 10.0}
    fields.update(ticket)
    return services.order_place(user_id=user_id, ticket=OrderTicket(**fields))


def test_a_bracket_trades_from_entry_to_one_exit() -> None:
    set_prices({"AAPL": "100.00"}, seq=1)
    who = trader()
    entry = buy(who.user_id, orderClass="bracket", takeProfit={"limitPrice": 100.5}, stopLoss={"stopPrice": 99.5})
    market = market_of(who, run_of(who, "realistic"))
    async_to_sync(market.reload)([who.user_id])
    async_to_sync(market.on_tick)(tick(2, "100.00"))
    entry.refresh_from_db()
    assert entry.status == OrderStatus.FILLED and entry.average_price == D("100.00")
    assert len(market.open_orders[who.user_id]) == 2
    async_to_sync(market.on_tick)(tick(3, "100.10"))
    async_to_sync(market.on_tick)(tick(4, "99.40"))  # through the stop
    statuses = dict(Order.objects.filter(parent=entry).values_list("order_type", "status"))
    assert statuses == {"limit": "canceled", "stop": "filled"}


def test_a_clock_change_reads_the_users_orders_before_the_bars_it_plays() -> None:
    set_prices({"AAPL": "100.00"}, seq=1)
    who = trader()
    market = market_of(who, run_of(who, "ideal"))
    async_to_sync(market.reload)([who.user_id])
    placed = buy(who.user_id, orderType="limit", limitPrice=99.5)  # its hint to the worker not read yet

    async_to_sync(market.clock_changed)(market.worker.runs[who.simulator_id])

    assert [order.id for order in market.open_orders[who.user_id]] == [placed.id]


def test_a_daily_loss_limit_set_while_a_market_of_its_own_plays_is_watched_from_the_next_lease_renewal() -> None:
    set_prices({"AAPL": "100.00"}, seq=1)
    who = trader()
    run = dataclasses.replace(
        run_of(who, "ideal"), market={"source": "synthetic", "seed": 1}, clock=Clock(settings=ClockSettings())
    )
    market = market_of(who, run)
    market.channel = async_to_sync(get_channel_layer().new_channel)()  # a renewal joins its groups again
    async_to_sync(market.own.add)(run)
    unwatched = market.own.markets[run.simulator_id].watch_losses

    services.account_risk_limits_set(user_id=who.user_id, limits=RiskLimits(dailyLossLimit=100))
    async_to_sync(market.leases_renewed)()

    assert (unwatched, market.own.markets[run.simulator_id].watch_losses) == (False, True)


def test_a_run_another_worker_took_over_is_dropped_from_the_worker_and_its_fill_is_left_to_the_new_holder() -> None:
    set_prices({"AAPL": "100.00"}, seq=1)
    who = trader()
    order = buy(who.user_id)
    run = run_of(who, "realistic")
    market = market_of(who, run)
    async_to_sync(market.reload)([who.user_id])
    # The lease lapses and another worker adopts the simulator under a new epoch.
    Simulator.objects.filter(pk=who.simulator_id).update(lease_expires_at=None, worker=None)
    assert simulator_services.simulator_claim(simulator_id=who.simulator_id, worker_id=make_worker()) is not None

    async_to_sync(market.on_tick)(tick(2, "100.00"))

    assert run.simulator_id not in market.worker.runs
    order.refresh_from_db()
    assert order.status == OrderStatus.NEW


def test_the_orders_group_of_the_longest_worker_id_is_a_valid_group_name() -> None:
    longest = f"{'h' * 60}-4194304-{'f' * 6}"  # simulator_app.worker.new_worker_id: hostname[:60], pid, 3 bytes

    assert get_channel_layer().require_valid_group_name(worker_orders_group(longest))


# --- In a worker started in this process -----------------------------------------------------------

# Leases renewed once a minute: within a test only the first renewal (at start) happens, so what the
# market learns after it comes from the signals and the channel layer, not from a later renewal.
SLOW_RENEWALS = {
    "SIMULATOR_TICK_MS": 20,
    "MARKET_TICK_MS": 20,
    "SIMULATOR_LEASE_TTL_MS": 120_000,
    "SIMULATOR_LEASE_RENEW_MS": 60_000,
}


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    with override_settings(**SLOW_RENEWALS):
        running = Worker(runner="inprocess")
        await running.start()
        yield running
        await running.stop(hand_over=True)


async def eventually(read: Callable[[], T], holds: Callable[[T], bool], *, timeout: float = 10) -> T:
    """Poll a database read until `holds` is true of it (the test fails at the deadline)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await database_sync_to_async(read)()
        if holds(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"never happened; last read {value!r}"
        await asyncio.sleep(0.02)


def the_feed() -> MarketFeed:
    return MarketFeed.objects.get(pk=1)


async def running_simulator_of_a_new_user() -> Simulator:
    session = await database_sync_to_async(make_session)()
    simulator = await database_sync_to_async(simulator_services.simulator_start)(
        user_id=session.user_id, session_id=session.id
    )
    return await eventually(
        lambda: Simulator.objects.get(pk=simulator.pk), lambda row: row.status == SimulatorStatus.RUNNING
    )


async def test_a_started_worker_produces_the_feed_and_fills_an_order_placed_after_its_last_renewal(
    worker: Worker,
) -> None:
    await eventually(the_feed, lambda feed: feed.worker_id == worker.worker_id and bool(feed.quotes))
    simulator = await running_simulator_of_a_new_user()
    assert simulator.worker_id == worker.worker_id

    # The order's hint reaches the market in the worker through its worker's orders group.
    order = await database_sync_to_async(buy)(simulator.user_id, quantity=1.0)
    filled = await eventually(lambda: Order.objects.get(pk=order.pk), lambda row: row.status == OrderStatus.FILLED)

    assert filled.filled_qty == D(1)


async def test_a_worker_stopping_with_hand_over_stops_its_market_and_releases_the_feed_at_once(
    worker: Worker,
) -> None:
    await eventually(the_feed, lambda feed: feed.worker_id == worker.worker_id)
    market = receivers.markets_in_workers[worker.worker_id]

    await worker.stop(hand_over=True)

    feed = await database_sync_to_async(the_feed)()
    assert feed.worker_id is None and not market.feed.producing
    assert worker.worker_id not in receivers.markets_in_workers
