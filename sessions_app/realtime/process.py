"""The server process's life under daphne: its background tasks, start-up, and a graceful shutdown.

config/asgi.py (the composition root) calls `install` with the apps' start and stop work (the
in-process simulator worker). Under daphne it uses Twisted's public reactor API: once the reactor
runs (`callWhenRunning`) the maintenance task, the channel-layer watchdog and the apps' start work
begin on its asyncio loop, and SIGTERM/SIGINT (Python's `signal.signal`, replacing Twisted's
handlers) first run the stop work and tell every connection `shutdown` (a jittered
`reconnectAfterMs`, close 4012), then stop the reactor: daphne alone would cancel the
connections without a close frame. Imported outside a daphne process (tests, scripts) nothing
is installed; under a reactor daphne could not have installed, the process stops with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import FrameType
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from sessions_app import services
from sessions_app.realtime import maintenance, metrics
from sessions_app.realtime.admission import admission
from sessions_app.realtime.consumer import live_connections
from sessions_app.realtime.publish import use_server_loop
from sessions_app.realtime.watchdog import process_watchdog

logger = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[], Awaitable[None]]
_tasks: list[asyncio.Task[Any]] = []  # the process's tasks, referenced until it exits
DRAIN_BATCH = 500  # connections told `shutdown` at once
# Collect the youngest generation after this many new container objects, not CPython's 700: a
# handshake makes a few hundred, and a collection every few handshakes walked their live objects.
GC_YOUNG_THRESHOLD = 10_000


def start_process_task(coroutine: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """Run `coroutine` as a task of the process, not of the connection or signal that started it.

    A task copies the context of whatever starts it: one started by a connection (the first to
    need a process-wide relay) would carry that connection's log fields forever, and asgiref's
    guard against re-entering its single database thread, so that every database_sync_to_async
    call of the task failed with "Single thread executor already being used". Process tasks start
    in an empty context of their own.
    """
    task = asyncio.get_running_loop().create_task(coroutine, name=name, context=contextvars.Context())
    _tasks.append(task)
    task.add_done_callback(_tasks.remove)
    return task


def install(*, on_start: Sequence[Work] = (), on_stop: Sequence[Work] = ()) -> bool:
    """Run the process's start work once daphne's reactor runs, and its stop work on SIGTERM.
    False when this is not a daphne process (nothing installed)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return False
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise ImproperlyConfigured(
            f"the service runs under daphne, on Twisted's asyncio reactor; {type(reactor).__name__} is installed"
        )
    # callLater from the running reactor: the callback then runs inside the asyncio loop.
    reactor.callWhenRunning(reactor.callLater, 0, _started, reactor, tuple(on_start), tuple(on_stop))
    return True


def settle_garbage_collector() -> None:
    """Keep what start-up made (modules, settings, URL conf, app registries: it lives as long as the
    process) out of every later collection, and collect the young generation less often.

    Under a connect storm the collector took about a fifth of a handshake's CPU, mostly full
    collections walking every object of the process (docs/performance.md, "The two-process storm
    and the fleet restart").
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


def _started(reactor: Any, on_start: tuple[Work, ...], on_stop: tuple[Work, ...]) -> None:
    settle_garbage_collector()
    use_server_loop(asyncio.get_running_loop())
    start_process_task(maintenance.maintain(), name="sessions-maintenance")
    start_process_task(process_watchdog().run(), name="channel-layer-watchdog")
    for work in on_start:
        start_process_task(_run(work), name=f"start-{getattr(work, '__qualname__', 'work')}")
    begun = False

    def on_signal(number: int, frame: FrameType | None) -> None:
        nonlocal begun
        if begun:  # a second signal: stop now
            reactor.callFromThread(reactor.stop)
            return
        begun = True
        logger.info("signal %s: telling %d connections to reconnect elsewhere", number, len(live_connections))
        reactor.callFromThread(start_process_task, _drain(reactor, on_stop), name="graceful-shutdown")

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)


async def _run(work: Work) -> None:
    try:
        await work()
    except Exception:
        logger.exception("process work %s failed", getattr(work, "__qualname__", work))


async def _drain(reactor: Any, on_stop: tuple[Work, ...]) -> None:
    try:
        await asyncio.gather(
            *(_run(work) for work in on_stop),
            shutdown_all(reason="server shutting down", grace_s=settings.SHUTDOWN_GRACE_MS / 1000),
        )
    except Exception:
        logger.exception("graceful shutdown failed; stopping anyway")
    finally:
        metrics.process_exiting()
        reactor.stop()


async def shutdown_all(*, reason: str, grace_s: float) -> int:
    """Tell every connection to go and close it; wait up to grace_s for them to disconnect.
    Handshakes arriving meanwhile are told to go too (admission is closed first)."""
    gate = admission()
    gate.close()
    held = list(live_connections.values())
    for start in range(0, len(held), DRAIN_BATCH):
        batch = held[start : start + DRAIN_BATCH]
        await asyncio.gather(*(c.server_shutdown(reason, held=len(held)) for c in batch), return_exceptions=True)
    deadline = time.monotonic() + grace_s
    # A handshake under way when the signal came tells itself to go once it is done: wait for it too.
    while (live_connections or gate.in_flight) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await maintenance.flush_presence()
    with contextlib.suppress(Exception):
        await database_sync_to_async(services.server_process_stopped)(process_id=maintenance.PROCESS_ID)
    return len(held)
