"""A simulator worker: runs simulators, holds their leases, adopts orphans.

One runs in every `manage.py simulator_worker` process and, in the embedded
default (SIMULATOR_RUNNER=inprocess), inside each daphne process. It listens on
the channel layer for assignments (a shared channel: a start reaches every
listening worker, and the database claim decides) and for stop commands (its
own channel), renews its leases every SIMULATOR_LEASE_RENEW_MS, and polls the
database for simulators nobody holds, so a lost message or a killed worker
only delays a simulator, never loses it.

It tells the apps above what it does with the signals of simulator_app.signals (the market
matches its users' orders and produces the price feed in the worker's process on them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from tenacity import before_sleep_log, retry, retry_if_exception_type, wait_exponential

from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.process import start_process_task
from simulator_app import selectors, services
from simulator_app.clock import ClockSettings
from simulator_app.groups import assignment_channel
from simulator_app.services import Claim, HeldSimulator
from simulator_app.signals import clock_changed, leases_renewed, run_started, worker_started, worker_stopping
from simulator_app.simulation_run import SimulationRun

logger = logging.getLogger(__name__)

ADOPT_BATCH = 50
STOP_STEP_TIMEOUT_S = 3.0
IDLE_CHECK_INTERVAL_S = 5.0


async def own_database_thread(work: Coroutine[object, object, None]) -> None:
    """Run `work` with its database calls on a thread of its own.

    database_sync_to_async runs every call of the process on one shared thread, so in a busy
    daphne process a lease renewal would wait behind the connections' queries and the lease
    could lapse. Each loop of a worker (and of what the apps above run in it) gets its own thread.
    """
    async with ThreadSensitiveContext():
        await work


async def receive(channel: str) -> dict[str, Any]:
    """The next message on `channel`, retried with backoff while the channel layer fails (the
    database poll keeps the simulators going meanwhile). The first try is a plain call: tenacity's
    wrapper costs more than an in-memory receive, and a lock-step replay receives one per bar."""
    try:
        message: dict[str, Any] = await get_channel_layer().receive(channel)
    except Exception:
        logger.warning("receiving on %s failed; retrying", channel, exc_info=True)
        return await receive_retrying(channel)
    return message


@retry(
    wait=wait_exponential(multiplier=0.1, max=5),
    before_sleep=before_sleep_log(logger, logging.WARNING, exc_info=True),
)
async def receive_retrying(channel: str) -> dict[str, Any]:
    message: dict[str, Any] = await get_channel_layer().receive(channel)
    return message


async def listen(channel: str, handle: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Hand every message on `channel` to `handle`, in order, until cancelled; one that fails is logged."""
    while True:
        message = await receive(channel)
        try:
            await handle(message)
        except Exception:
            logger.exception("failed to handle %s from %s", message.get("type"), channel)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    def __init__(self, *, runner: str) -> None:
        self.runner = runner
        self.worker_id = new_worker_id()
        self.channel_name = ""
        self.runs: dict[uuid.UUID, SimulationRun] = {}
        self.capacity = settings.SIMULATOR_WORKER_CAPACITY
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._next_idle_check = 0.0

    # --- Lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        layer = get_channel_layer()
        self.channel_name = await layer.new_channel()
        await self._register()
        await worker_started.asend(sender=Worker, worker=self)
        self._tasks = [
            start_process_task(
                own_database_thread(listen(assignment_channel(), self._on_assignment)), name="simulator-assignments"
            ),
            start_process_task(
                own_database_thread(listen(self.channel_name, self._on_command)), name="simulator-commands"
            ),
            start_process_task(own_database_thread(self._lease_loop()), name="simulator-leases"),
            start_process_task(self._tick_loop(), name="simulator-ticks"),
        ]
        logger.info("simulator worker %s started (%s, capacity %d)", self.worker_id, self.runner, self.capacity)

    @retry(
        retry=retry_if_exception_type(DatabaseError),
        wait=wait_exponential(multiplier=0.5, max=10),
        before_sleep=before_sleep_log(logger, logging.WARNING, exc_info=True),
    )
    async def _register(self) -> None:
        """Record this worker (its simulators reference it), waiting out a database that is not up yet."""
        await database_sync_to_async(services.worker_register)(
            worker_id=self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            runner=self.runner,
            channel_name=self.channel_name,
        )

    async def stop(self, *, hand_over: bool = True) -> int:
        """Stop running simulators here; with hand_over, release them for another worker at once."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        # Bounded: a loop stuck in a database call must not keep the simulators from being handed over.
        _, stuck = await asyncio.wait(self._tasks, timeout=STOP_STEP_TIMEOUT_S)
        if stuck:
            logger.warning("simulator worker %s: %d loops did not stop in time", self.worker_id, len(stuck))
        try:
            await asyncio.wait_for(
                worker_stopping.asend(sender=Worker, worker=self, hand_over=hand_over), STOP_STEP_TIMEOUT_S
            )
        except TimeoutError:
            logger.warning(
                "simulator worker %s: the apps' parts in it did not stop in time; their leases will lapse",
                self.worker_id,
            )
        except Exception:
            # The simulators are handed over all the same.
            logger.exception("simulator worker %s: the apps' parts in it failed to stop", self.worker_id)
        released = []
        if hand_over:
            released = await database_sync_to_async(services.worker_release, thread_sensitive=False)(
                worker_id=self.worker_id, held=self._held(checkpoint_all=True)
            )
        logger.info("simulator worker %s stopped; handed over %d simulators", self.worker_id, len(released))
        self.runs.clear()
        return len(released)

    # --- Messages from the channel layer ---------------------------------------

    async def _on_assignment(self, message: dict[str, Any]) -> None:
        if message.get("type") == "simulator.assign" and self._has_room():
            await self._claim(uuid.UUID(message["simulatorId"]))

    async def _on_command(self, message: dict[str, Any]) -> None:
        if message.get("type") == "simulator.stop":
            run = self.runs.get(uuid.UUID(message["simulatorId"]))
            if run is not None:
                await self._finish(run)
        elif message.get("type") == "simulator.clock":
            run = self.runs.get(uuid.UUID(message["simulatorId"]))
            if run is not None:
                await self._set_clock(run, message["clock"])

    async def _set_clock(self, run: SimulationRun, settings: dict[str, Any]) -> None:
        """Apply the trader's clock settings (a command, or the lease renewal that catches a lost one)."""
        if run.clock is not None and run.clock.apply(ClockSettings.from_state(settings)):
            run.dirty = True
            await clock_changed.asend(sender=Worker, worker=self, run=run)

    def drop(self, simulator_id: uuid.UUID) -> None:
        """Forget a run this worker no longer holds (the market found its lease lost when applying fills)."""
        self.runs.pop(simulator_id, None)

    # --- Runs ---------------------------------------------------------------------

    def _has_room(self) -> bool:
        return not self._closing and len(self.runs) < self.capacity

    async def _claim(self, simulator_id: uuid.UUID) -> None:
        if simulator_id in self.runs:
            return
        claim = await database_sync_to_async(services.simulator_claim)(
            simulator_id=simulator_id, worker_id=self.worker_id
        )
        if claim is not None:
            await self._begin(claim)

    async def _begin(self, claim: Claim) -> None:
        run = SimulationRun.from_claim(claim)
        self.runs[run.simulator_id] = run
        await run_started.asend(sender=Worker, worker=self, run=run)
        if claim.status == "stopping":
            await self._finish(run)
            return
        if claim.recovered_from is not None:
            reason = f"resumed by worker {self.worker_id} after worker {claim.recovered_from} was lost"
            logger.warning("adopted simulator %s from lost worker %s", run.simulator_id, claim.recovered_from)
        else:
            reason = f"running on worker {self.worker_id}"
        if await database_sync_to_async(services.simulator_mark_running)(
            simulator_id=run.simulator_id, worker_id=self.worker_id, epoch=run.epoch, reason=reason
        ):
            run.status = "running"

    async def _finish(self, run: SimulationRun, *, reason: str | None = None) -> None:
        run.status = "stopping"
        await database_sync_to_async(services.simulator_finish_stop)(
            simulator_id=run.simulator_id,
            worker_id=self.worker_id,
            epoch=run.epoch,
            state=run.checkpoint(),
            reason=reason,
        )
        self.runs.pop(run.simulator_id, None)

    async def _fail(self, run: SimulationRun, error: str) -> None:
        self.runs.pop(run.simulator_id, None)
        await database_sync_to_async(services.simulator_fail)(
            simulator_id=run.simulator_id, worker_id=self.worker_id, epoch=run.epoch, error=error
        )

    def _held(self, *, checkpoint_all: bool = False) -> dict[uuid.UUID, HeldSimulator]:
        return {
            run.simulator_id: HeldSimulator(run.epoch, run.checkpoint() if run.dirty or checkpoint_all else None)
            for run in self.runs.values()
        }

    # --- Loops ------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        interval = settings.SIMULATOR_TICK_MS / 1000
        while True:
            await asyncio.sleep(interval)
            now = now_ms()
            for run in list(self.runs.values()):
                if not run.is_running:
                    continue
                try:
                    run.step(now)
                except Exception as error:
                    logger.exception("simulator %s failed", run.simulator_id)
                    try:
                        await self._fail(run, f"simulator failed: {type(error).__name__}: {error}")
                    except Exception:
                        # Unrecorded: its lease lapses; another worker retries it, or the orphan sweep shows `error`.
                        logger.exception("could not record the failure of simulator %s", run.simulator_id)

    async def _lease_loop(self) -> None:
        interval = settings.SIMULATOR_LEASE_RENEW_MS / 1000
        while True:
            try:
                await self.renew_and_adopt()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("simulator lease renewal failed; retrying")
            await asyncio.sleep(interval)

    async def renew_and_adopt(self) -> None:
        held = self._held()
        report = await database_sync_to_async(services.worker_heartbeat)(worker_id=self.worker_id, held=held)
        for simulator_id, sent in held.items():
            run = self.runs.get(simulator_id)
            if run is not None and sent.state is not None:
                run.dirty = False
        for simulator_id in report.lost:
            if self.runs.pop(simulator_id, None) is not None:
                logger.warning("simulator %s is no longer held by %s; dropped here", simulator_id, self.worker_id)
        for simulator_id in report.stop_requested:
            run = self.runs.get(simulator_id)
            if run is not None:
                await self._finish(run)
        for simulator_id, clock in report.clocks.items():
            run = self.runs.get(simulator_id)
            if run is not None:
                await self._set_clock(run, clock)
        if self._has_room():
            candidates = await database_sync_to_async(selectors.simulators_adoptable)(
                now=timezone.now(), limit=min(ADOPT_BATCH, self.capacity - len(self.runs))
            )
            for simulator_id in candidates:
                if not self._has_room():
                    break
                await self._claim(simulator_id)
        await self._stop_idle()
        await leases_renewed.asend(sender=Worker, worker=self)

    async def _stop_idle(self) -> None:
        if settings.SIMULATOR_IDLE_TIMEOUT_S <= 0 or time.monotonic() < self._next_idle_check or not self.runs:
            return
        self._next_idle_check = time.monotonic() + min(IDLE_CHECK_INTERVAL_S, settings.SIMULATOR_IDLE_TIMEOUT_S)
        idle = await database_sync_to_async(selectors.simulators_idle)(worker_id=self.worker_id, now=timezone.now())
        for simulator_id in idle:
            run = self.runs.get(simulator_id)
            if run is not None:
                reason = f"idle: no client of its user connected for {settings.SIMULATOR_IDLE_TIMEOUT_S} s"
                await self._finish(run, reason=reason)
