"""Graceful shutdown under daphne: on SIGTERM/SIGINT every open connection gets
`shutdown` (with a jittered reconnect hint) and a 4012 close before the reactor
stops. Daphne alone would cancel the application coroutines without a close frame.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType

from django.conf import settings

from sessions_app.live import live_connections

logger = logging.getLogger(__name__)
_draining: list[asyncio.Future[None]] = []  # keeps the drain task referenced until the process exits


def install_graceful_shutdown() -> bool:
    """Hook our handlers in once daphne's reactor has installed its own. False if not under daphne."""
    if "twisted.internet.reactor" not in sys.modules:
        return False
    from twisted.internet import reactor

    if not hasattr(reactor, "_asyncioEventloop"):
        return False
    reactor.callWhenRunning(_wrap_signal_handlers, reactor)
    return True


def _wrap_signal_handlers(reactor) -> None:
    state = {"started": False}

    def on_signal(number: int, frame: FrameType | None) -> None:
        if state["started"]:
            # A second signal: stop now.
            reactor.callFromThread(reactor.stop)
            return
        state["started"] = True
        logger.info("signal %s: telling %d connections to reconnect elsewhere", number, len(live_connections))
        reactor.callFromThread(_begin, reactor)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)


def _begin(reactor) -> None:
    loop = reactor._asyncioEventloop

    async def drain() -> None:
        try:
            await live_connections.shutdown_all(
                reason="server shutting down", grace_s=settings.SHUTDOWN_GRACE_MS / 1000
            )
        except Exception:
            logger.exception("graceful shutdown failed; stopping anyway")
        finally:
            reactor.stop()

    _draining.append(asyncio.ensure_future(drain(), loop=loop))
