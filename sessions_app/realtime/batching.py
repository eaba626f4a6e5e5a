"""Group trips to the database: calls made while a trip is under way share the next one.

Channels runs every `database_sync_to_async` call on one thread, so a storm of handshakes queues
there one query at a time. A Batcher takes the items that arrived while its previous trip ran and
hands them all to one synchronous function, which answers each with a result or an exception (as
a group commit does for a database log). With nothing in flight an item goes at once: batching
adds no wait, it only takes what queued anyway. Each Batcher has a thread (and so a database
connection) of its own, so its trips neither wait behind the shared database thread's work nor
hold it up: the token checks of one batch run while the previous batch's sessions are attached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from django.db import close_old_connections

from sessions_app.realtime import metrics

I = TypeVar("I")  # noqa: E741 - the item, as in the typing docs
R = TypeVar("R")

# Bounded so a batch's IN (...) lists stay short for every database (SQLite's variable limit).
MAX_BATCH = 100


class Batcher(Generic[I, R]):
    """`await batcher(item)` runs `run([item, ...])` on the database thread with whatever else queued.

    `run` returns one entry per item, in order: the item's result, or the exception to raise in
    its caller. An exception `run` itself raises goes to every caller of that trip.
    """

    def __init__(self, run: Callable[[list[I]], Sequence[R | BaseException]], *, name: str) -> None:
        self.run = run
        self.name = name
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")

    async def __call__(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            # A trip left unfinished by a closed loop (a test's) must not hold this one's items.
            self._pending = [(i, f) for i, f in self._pending if f.get_loop() is loop]
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            batch = [(item, future) for item, future in batch if not future.done()]  # callers gone
            if not batch:
                continue
            metrics.DB_BATCH_SIZE.labels(self.name).observe(len(batch))
            try:
                results = await loop.run_in_executor(self._thread, self._run_batch, [item for item, _ in batch])
            except Exception as error:
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _run_batch(self, items: list[I]) -> Sequence[R | BaseException]:
        # As database_sync_to_async does: drop a connection past CONN_MAX_AGE or left broken.
        close_old_connections()
        try:
            results = self.run(items)
        finally:
            close_old_connections()
        if len(results) != len(items):
            raise RuntimeError(f"batch {self.name}: {len(results)} results for {len(items)} items")
        return results
