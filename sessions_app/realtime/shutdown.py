"""The daphne process lifecycle: start-up hooks, and a graceful shutdown.

On SIGTERM/SIGINT the stop hooks run (the apps hand their process work over) while every open
connection gets `shutdown` (with a jittered reconnect hint) and a 4012 close, then the reactor
stops. Daphne alone would cancel the application coroutines without a close frame.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any

from django.conf import settings

from sessions_app.realtime import internals, metrics
from sessions_app.realtime.live import live_connections
from sessions_app.realtime.tasks import start_process_task

logger = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
# Daphne's Twisted reactor: Twisted declares it through zope interfaces, which mypy cannot follow.
Reactor = Any
_running: list[asyncio.Future[None]] = []  # keeps hook and drain tasks referenced until the process exits


def install_graceful_shutdown(*, on_start: Sequence[Hook] = (), on_stop: Sequence[Hook] = ()) -> bool:
    """Run `on_start` once daphne's reactor runs and `on_stop` on SIGTERM. False if not under daphne."""
    reactor = internals.running_reactor()
    if reactor is None or internals.reactor_loop(reactor) is None:
        return False
    reactor.callWhenRunning(_on_running, reactor, tuple(on_start), tuple(on_stop))
    return True


async def _run_hook(hook: Hook) -> None:
    try:
        await hook()
    except Exception:
        logger.exception("process hook %s failed", getattr(hook, "__qualname__", hook))


def _on_running(reactor: Reactor, on_start: tuple[Hook, ...], on_stop: tuple[Hook, ...]) -> None:
    loop = internals.reactor_loop(reactor)
    for hook in on_start:
        _running.append(start_process_task(_run_hook(hook), name="process-start-hook", loop=loop))
    _wrap_signal_handlers(reactor, on_stop)


def _wrap_signal_handlers(reactor: Reactor, on_stop: tuple[Hook, ...]) -> None:
    state = {"started": False}

    def on_signal(number: int, frame: FrameType | None) -> None:
        if state["started"]:
            # A second signal: stop now.
            reactor.callFromThread(reactor.stop)
            return
        state["started"] = True
        logger.info("signal %s: telling %d connections to reconnect elsewhere", number, len(live_connections))
        reactor.callFromThread(_begin, reactor, on_stop)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)


def _begin(reactor: Reactor, on_stop: tuple[Hook, ...]) -> None:
    loop = internals.reactor_loop(reactor)

    async def drain() -> None:
        try:
            await asyncio.gather(
                *(_run_hook(hook) for hook in on_stop),
                live_connections.shutdown_all(reason="server shutting down", grace_s=settings.SHUTDOWN_GRACE_MS / 1000),
            )
        except Exception:
            logger.exception("graceful shutdown failed; stopping anyway")
        finally:
            metrics.process_exiting()
            reactor.stop()

    _running.append(start_process_task(drain(), name="graceful-shutdown", loop=loop))
