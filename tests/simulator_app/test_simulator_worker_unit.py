"""The simulator worker in-process, against the in-memory channel layer and the test database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from simulator_app import services
from simulator_app.models import Simulator, SimulatorStatus
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker
from tests.support.factories import make_session

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST = {"SIMULATOR_TICK_MS": 20, "SIMULATOR_LEASE_TTL_MS": 1000, "SIMULATOR_LEASE_RENEW_MS": 100}


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    with override_settings(**FAST):
        running = Worker(runner="inprocess")
        await running.start()
        yield running
        await running.stop(hand_over=False)


async def simulator_when(
    simulator_id: object, condition: Callable[[Simulator], bool], timeout: float = 30
) -> Simulator:
    """The simulator's row once `condition` holds for it (polled until `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        simulator = await database_sync_to_async(Simulator.objects.select_related("worker").get)(pk=simulator_id)
        if condition(simulator):
            return simulator
        assert asyncio.get_running_loop().time() < deadline, f"never so: {simulator.status} {simulator.state}"
        await asyncio.sleep(0.02)


async def simulator_reaching(simulator_id: object, status: str) -> Simulator:
    return await simulator_when(simulator_id, lambda simulator: simulator.status == status)


async def test_a_started_simulator_runs_ticks_and_is_checkpointed(worker: Worker) -> None:
    session = await database_sync_to_async(make_session)()
    simulator = await database_sync_to_async(services.simulator_start)(user_id=session.user_id, session_id=session.id)
    running = await simulator_reaching(simulator.id, SimulatorStatus.RUNNING)
    assert running.worker_id == worker.worker_id and running.started_at is not None
    checkpointed = await simulator_when(simulator.id, lambda s: s.state.get("ticks", 0) > 5)
    assert checkpointed.state["resumes"] == 0
    registered = checkpointed.worker  # its heartbeats come with the lease renewals that checkpoint
    assert registered is not None and registered.running == 1 and registered.stopped_at is None


async def test_a_simulator_whose_step_fails_shows_error_with_the_reason(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_step(self: SimulationRun, now_ms: int) -> None:
        raise RuntimeError("price feed exploded")

    monkeypatch.setattr(SimulationRun, "step", broken_step)
    session = await database_sync_to_async(make_session)()
    simulator = await database_sync_to_async(services.simulator_start)(user_id=session.user_id, session_id=session.id)
    failed = await simulator_reaching(simulator.id, SimulatorStatus.ERROR)
    assert "price feed exploded" in failed.error and failed.worker is None
    assert simulator.id not in worker.runs


async def test_a_stop_command_finishes_the_simulator_and_frees_the_worker(worker: Worker) -> None:
    session = await database_sync_to_async(make_session)()
    simulator = await database_sync_to_async(services.simulator_start)(user_id=session.user_id, session_id=session.id)
    await simulator_when(simulator.id, lambda s: s.state.get("ticks", 0) > 0)  # it ticked before the stop
    await database_sync_to_async(services.simulator_stop)(user_id=session.user_id, reason="done")
    stopped = await simulator_reaching(simulator.id, SimulatorStatus.STOPPED)
    assert stopped.reason == "done" and stopped.state["ticks"] > 0
    # The worker forgets the run right after persisting `stopped` (and publishing it).
    deadline = asyncio.get_running_loop().time() + 30
    while worker.runs and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert worker.runs == {}
