"""What the market does when the apps below it tell it something, and what it adds to the
operator's counts."""

from __future__ import annotations

from market_app import services
from market_app.in_worker import MarketInWorker
from market_app.models import OPEN_ORDER_STATUSES, Order
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker


def cancel_orders_of_ended_simulator(
    sender: object, *, user_id: int, status: str, reason: str, **kwargs: object
) -> None:
    """simulator_app.signals.simulator_ended: nothing matches orders without a running simulator,
    so end them rather than leave them hanging (in the simulator's transaction)."""
    services.orders_cancel_open(user_id=user_id, reason=f"simulator {status}: {reason}")


# --- The market's part in each simulator worker of this process (one; tests start several) -------

markets_in_workers: dict[str, MarketInWorker] = {}


async def start_market_in_worker(sender: object, *, worker: Worker, **kwargs: object) -> None:
    """simulator_app.signals.worker_started: match its users' orders, produce the feed, sample equity."""
    market = MarketInWorker(worker)
    markets_in_workers[worker.worker_id] = market
    await market.start()


async def load_orders_of_started_run(sender: object, *, worker: Worker, run: SimulationRun, **kwargs: object) -> None:
    """simulator_app.signals.run_started"""
    await markets_in_workers[worker.worker_id].run_started(run)


async def play_changed_clock(sender: object, *, worker: Worker, run: SimulationRun, **kwargs: object) -> None:
    """simulator_app.signals.clock_changed"""
    await markets_in_workers[worker.worker_id].clock_changed(run)


async def follow_renewed_leases(sender: object, *, worker: Worker, **kwargs: object) -> None:
    """simulator_app.signals.leases_renewed"""
    await markets_in_workers[worker.worker_id].leases_renewed()


async def stop_market_in_worker(sender: object, *, worker: Worker, hand_over: bool, **kwargs: object) -> None:
    """simulator_app.signals.worker_stopping"""
    market = markets_in_workers.pop(worker.worker_id, None)
    if market is not None:
        await market.stop(hand_over=hand_over)


def service_counts() -> dict[str, object]:
    return {"openOrders": Order.objects.filter(status__in=OPEN_ORDER_STATUSES).count()}
