"""What the simulator app runs inside each daphne process: the in-process worker
(SIMULATOR_RUNNER=inprocess) and the orphan sweep that turns simulators no
worker holds into `error`. Started and stopped by the process lifecycle hooks
in config/asgi.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from sessions_app.realtime.process import start_process_task
from simulator_app import services
from simulator_app.worker import Worker

logger = logging.getLogger(__name__)

_worker: Worker | None = None
_sweeper: asyncio.Task[None] | None = None


async def _sweep_orphans() -> None:
    interval = max(1.0, settings.SIMULATOR_LEASE_RENEW_MS / 1000)
    while True:
        await asyncio.sleep(interval)
        try:
            failed = await database_sync_to_async(services.simulators_fail_orphaned)()
            if failed:
                logger.warning("%d simulators had no worker and were marked error or stopped", failed)
        except Exception:
            logger.exception("orphaned simulator sweep failed; retrying")


async def start_in_server() -> None:
    global _worker, _sweeper
    if settings.SIMULATOR_RUNNER == "inprocess" and _worker is None:
        _worker = Worker(runner="inprocess")
        await _worker.start()
    if _sweeper is None:
        _sweeper = start_process_task(_sweep_orphans(), name="simulator-orphan-sweep")


async def stop_in_server() -> None:
    global _worker, _sweeper
    if _sweeper is not None:
        _sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await _sweeper
        _sweeper = None
    if _worker is not None:
        await _worker.stop(hand_over=True)
        _worker = None
