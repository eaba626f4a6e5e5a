"""What a simulator worker tells the apps above it (simulator_app.signals), in-process, against the
in-memory channel layer and the test database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.dispatch import Signal
from django.test import override_settings

from simulator_app import services
from simulator_app import worker as worker_module
from simulator_app.models import Simulator, SimulatorStatus
from simulator_app.signals import leases_renewed, run_started, worker_started, worker_stopping
from simulator_app.worker import Worker
from tests.support.factories import make_session

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST = {"SIMULATOR_TICK_MS": 20, "SIMULATOR_LEASE_TTL_MS": 1000, "SIMULATOR_LEASE_RENEW_MS": 100}
LIFE = {"worker_started": worker_started, "run_started": run_started, "leases_renewed": leases_renewed}


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """What the worker's signals carried, in order (worker_stopping with the simulator's holder at that moment)."""
    received: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str) -> Any:
        async def record(sender: object, **kwargs: Any) -> None:
            received.append((name, kwargs))

        return record

    async def record_stopping(sender: object, *, worker: Worker, **kwargs: Any) -> None:
        holders = await database_sync_to_async(list)(Simulator.objects.values_list("worker_id", flat=True))
        received.append(("worker_stopping", {"worker": worker, "holders": holders, **kwargs}))

    connected: list[tuple[Signal, Any]] = [(signal, recorder(name)) for name, signal in LIFE.items()]
    connected.append((worker_stopping, record_stopping))
    for signal, receiver in connected:
        signal.connect(receiver, weak=False)
    yield received
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    with override_settings(**FAST):
        running = Worker(runner="inprocess")
        await running.start()
        yield running
        await running.stop(hand_over=False)


async def running_simulator() -> Simulator:
    session = await database_sync_to_async(make_session)()
    simulator = await database_sync_to_async(services.simulator_start)(user_id=session.user_id, session_id=session.id)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        row = await database_sync_to_async(Simulator.objects.get)(pk=simulator.pk)
        if row.status == SimulatorStatus.RUNNING:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"still {row.status}"
        await asyncio.sleep(0.02)


async def until_heard(heard: list[tuple[str, dict[str, Any]]], name: str, count: int = 1) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while sum(1 for heard_name, _ in heard if heard_name == name) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{name} not sent {count} times: {heard}"
        await asyncio.sleep(0.02)


async def test_a_worker_tells_when_it_starts_takes_a_simulator_renews_its_leases_and_stops(
    heard: list[tuple[str, dict[str, Any]]],
) -> None:
    with override_settings(**FAST):
        worker = Worker(runner="inprocess")
        await worker.start()
        simulator = await running_simulator()
        renewals_before = sum(1 for name, _ in heard if name == "leases_renewed")
        await until_heard(heard, "leases_renewed", renewals_before + 1)
        await worker.stop(hand_over=True)

    names = [name for name, _ in heard]
    assert names[0] == "worker_started" and names[-1] == "worker_stopping"
    assert all(kwargs["worker"] is worker for _, kwargs in heard)
    [started] = [kwargs["run"] for name, kwargs in heard if name == "run_started"]
    assert started.simulator_id == simulator.id and started.user_id == simulator.user_id
    stopping = heard[-1][1]
    # Sent after the worker's loops stopped and before it released its simulators.
    assert stopping["hand_over"] is True and stopping["holders"] == [worker.worker_id]
    assert (await database_sync_to_async(Simulator.objects.get)(pk=simulator.pk)).worker_id is None


async def never_stops(sender: object, **kwargs: Any) -> None:
    await asyncio.Event().wait()


async def fails(sender: object, **kwargs: Any) -> None:
    raise RuntimeError("the feed could not be released")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("receiver", [never_stops, fails], ids=["never-stops", "fails"])
async def test_a_receiver_that_does_not_stop_in_time_or_fails_does_not_keep_the_worker_from_handing_over(
    worker: Worker, monkeypatch: pytest.MonkeyPatch, receiver: Any
) -> None:
    monkeypatch.setattr(worker_module, "STOP_STEP_TIMEOUT_S", 0.2)
    simulator = await running_simulator()
    worker_stopping.connect(receiver, weak=False)
    try:
        handed_over = await worker.stop(hand_over=True)
    finally:
        worker_stopping.disconnect(receiver)

    assert handed_over == 1
    assert (await database_sync_to_async(Simulator.objects.get)(pk=simulator.pk)).worker_id is None
