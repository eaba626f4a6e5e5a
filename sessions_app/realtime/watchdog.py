"""The channel-layer watchdog (docs/partitions.md).

A server process cut off from its channel layer (Redis unreachable from this host, say) would keep
sockets that answer heartbeats but get no push. Twice a second the process sends a probe through
the layer to a channel of its own; when none has come back for CHANNEL_LAYER_WATCHDOG_MS it tells
each client `shutdown` (close 4012, reconnect elsewhere) and refuses handshakes with
`service_unavailable` until a probe comes back. /readyz reports the latest probe. It knows nothing
of the layer's insides: what it measures is what the connections depend on, a message sent and
received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app.endings import start_ending
from sessions_app.realtime import metrics
from sessions_app.realtime.admission import admission
from sessions_app.realtime.consumer import live_connections

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.5
READY_WITHIN_S = 2.0  # /readyz: a probe came back this recently


class Watchdog:
    """Probes the channel layer; with a `bound_s` (CHANNEL_LAYER_WATCHDOG_MS), also acts on silence."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.started = time.monotonic()
        self.heard: float | None = None  # when a probe last came back
        self.round_trip_ms: float | None = None

    async def run(self) -> None:
        """Probe forever (started with the server process)."""
        layer = get_channel_layer()
        channel = None
        listening: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    if channel is None:
                        channel = await layer.new_channel("watchdog.")
                        listening = asyncio.ensure_future(self._listen(channel))
                    async with asyncio.timeout(max(self.bound_s, READY_WITHIN_S)):
                        await layer.send(channel, {"type": "watchdog.probe", "sent": time.monotonic()})
                except Exception as error:
                    logger.debug("watchdog probe not sent: %r", error)
                await asyncio.sleep(PROBE_INTERVAL_S)
                self.judge(time.monotonic() - (self.heard or self.started))
        finally:
            if listening is not None:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening

    async def _listen(self, channel: str) -> None:
        layer = get_channel_layer()
        while True:
            try:
                probe = await layer.receive(channel)
            except Exception:
                await asyncio.sleep(PROBE_INTERVAL_S)  # a layer whose receive can fail: the next probe tells
                continue
            self.heard = time.monotonic()
            self.round_trip_ms = round((self.heard - float(probe["sent"])) * 1000, 2)

    def readiness(self) -> dict[str, object]:
        """The channel layer's line of /readyz: a probe came back lately, and how long it took."""
        if self.heard is None or time.monotonic() - self.heard > READY_WITHIN_S:
            return {"ok": False, "error": f"no message came back through the channel layer within {READY_WITHIN_S:g} s"}
        return {"ok": True, "ms": self.round_trip_ms}

    def judge(self, silent_s: float) -> None:
        if not self.bound_s:
            return
        gate = admission()
        if silent_s < self.bound_s:
            if gate.layer_down:
                gate.layer_down = False
                logger.info("channel layer answers again; admitting connections")
            return
        if not gate.layer_down:
            gate.layer_down = True
            metrics.CHANNEL_LAYER_WATCHDOG_TRIPS.inc()
            logger.warning(
                "channel layer silent for %.1f s; sending %d connections elsewhere", silent_s, len(live_connections)
            )
        moving = [c for c in live_connections.values() if c.opened and not c.ending and c.closing_task is None]
        for conn in moving:
            start_ending(conn, conn.server_shutdown("this server lost its channel layer", held=len(moving)))


_watchdog: Watchdog | None = None


def process_watchdog() -> Watchdog:
    """This process's watchdog (sessions_app.realtime.process runs it), from the settings; it acts
    on silence unless CHANNEL_LAYER_WATCHDOG_MS is 0, and always answers /readyz."""
    global _watchdog
    if _watchdog is None:
        _watchdog = Watchdog(settings.CHANNEL_LAYER_WATCHDOG_MS / 1000)
    return _watchdog
