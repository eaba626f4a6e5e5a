"""Run simulators in this process (production: SIMULATOR_RUNNER=worker).

Start as many as you like; they share the load through the channel layer and
adopt each other's simulators if one dies. SIGTERM hands its simulators over.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.realtime import metrics
from simulator_app.worker import Worker

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run trading simulators: hold their leases, adopt orphans, hand over on SIGTERM."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_SHARDS:
            raise CommandError(
                "simulator_worker needs REDIS_URL: with the in-memory channel layer it could not hear the "
                "servers. In the embedded default the server runs simulators itself (SIMULATOR_RUNNER=inprocess)."
            )
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        worker = Worker(runner="worker")
        await worker.start()
        self.stdout.write(f"simulator worker {worker.worker_id} running; SIGTERM hands its simulators over")
        self.stdout.flush()
        await stop.wait()
        handed_over = await worker.stop(hand_over=True)
        metrics.process_exiting()
        self.stdout.write(f"simulator worker {worker.worker_id} stopped; handed over {handed_over} simulators")
