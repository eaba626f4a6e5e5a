"""The connections open in this server process, and the chores done for them.

One maintenance task per process (not one per connection) closes silent
connections, ends connections that reach their expiry, hands last-seen times to the
registered chores in batches (so heartbeats never touch the database), and compares each
connection with its session stream's head, so a push the channel layer lost is
sent within seconds, and a stream Redis lost is resynchronised. It also watches the channel
layer: a process that cannot read from it sends its clients to another (docs/partitions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app.realtime import internals, metrics
from sessions_app.realtime.admission import admission
from sessions_app.realtime.limits import connections_refresh
from sessions_app.realtime.registry import Presence, chores, session_handler
from sessions_app.realtime.schema import now_ms
from sessions_app.realtime.stream import stream_store
from sessions_app.realtime.tasks import start_process_task

# The consumer (sessions_app.realtime.consumer.Connection), which imports this module.
SessionConsumer = Any

logger = logging.getLogger(__name__)

EXPIRY_SWEEP_INTERVAL_S = 60.0
CLOSED_CHANNEL_WATCH_S = 60.0  # how long messages for a closed channel may still arrive
WATCHDOG_TICK_S = 0.5  # how often the channel-layer watchdog looks
PROCESS_ID = f"{socket.gethostname()[:60]}-{os.getpid()}"


class LiveConnections:
    def __init__(self) -> None:
        self._connections: dict[str, SessionConsumer] = {}
        self._seen_sessions: set[str] = set()
        self._seen_devices: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._catch_ups: set[asyncio.Task[None]] = set()
        self._closed_channels: dict[str, tuple[dict, float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._connections)

    def snapshot(self) -> list[SessionConsumer]:
        return list(self._connections.values())

    def add(self, consumer: SessionConsumer) -> None:
        self._connections[consumer.channel_name] = consumer
        self._ensure_maintenance()

    def remove(self, consumer: SessionConsumer) -> None:
        self._connections.pop(consumer.channel_name, None)

    def forget_channel(self, layer: object, channel: str) -> None:
        """Drop what channels-redis keeps for a closed channel, now and for a while after.

        channels-redis routes each message for this process to a per-channel queue it creates on
        demand; one that arrives after its consumer left (a group send already on its way) makes
        a queue nobody reads, kept forever: a leak per closed connection.
        """
        buffer = internals.drop_receive_buffer(layer, channel)
        if buffer is not None:
            self._closed_channels[channel] = (buffer, time.monotonic() + CLOSED_CHANNEL_WATCH_S)

    def _drop_closed_channel_buffers(self, now: float) -> None:
        for channel, (buffer, until) in list(self._closed_channels.items()):
            buffer.pop(channel, None)
            if now >= until:
                del self._closed_channels[channel]

    def touch(self, conn: SessionConsumer) -> None:
        self._seen_sessions.add(conn.session_id)
        self._seen_devices.add(conn.device_key)

    def _ensure_maintenance(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = start_process_task(self._maintain(), name="sessions-maintenance")
            # Its own task: the chores above wait on Redis and the database, which it must not.
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = start_process_task(self._watch(), name="channel-layer-watchdog")

    async def flush_presence(self) -> None:
        if not self._seen_sessions and not self._seen_devices:
            return
        session_ids, device_pks = list(self._seen_sessions), list(self._seen_devices)
        self._seen_sessions.clear()
        self._seen_devices.clear()
        registered = chores()
        if registered is None:
            return
        try:
            await database_sync_to_async(registered.presence_flush)(Presence(session_ids, device_pks))
        except Exception:
            logger.exception("could not persist last-seen times; will retry")
            self._seen_sessions.update(session_ids)
            self._seen_devices.update(device_pks)

    async def report(self) -> None:
        """Tell the database which connections this process holds (the admin's live view)."""
        registered = chores()
        if registered is None:
            return
        connections = [c.describe() for c in self.snapshot() if c.opened]
        try:
            await database_sync_to_async(registered.process_report)(
                process_id=PROCESS_ID, hostname=socket.gethostname(), pid=os.getpid(), connections=connections
            )
        except Exception:
            logger.exception("could not report this process's connections; will retry")

    async def check_streams(self) -> None:
        consumers = [c for c in self.snapshot() if c.opened and not c.ending]
        if not consumers:
            return
        try:
            heads = await stream_store().heads(sorted({c.stream.session_id for c in consumers}))
        except Exception:
            logger.warning("could not read the session streams' heads; will retry", exc_info=True)
            return
        for consumer in consumers:
            head = heads.get(consumer.stream.session_id)
            if consumer.stream.lags_behind(head):
                task = asyncio.ensure_future(consumer.stream.catch_up(consumer, head))
                self._catch_ups.add(task)
                task.add_done_callback(self._catch_up_done)

    async def check_credentials(self) -> None:
        """End the connections whose credential was revoked since they opened. The revocation's own
        event closes them at once; this bounds the wait when that event was lost."""
        registered = chores()
        connections = [c for c in self.snapshot() if c.opened and not c.ending and c.credential_key]
        if registered is None or not connections:
            return
        try:
            revoked = set(
                await database_sync_to_async(registered.credentials_revoked)(
                    sorted({c.credential_key for c in connections})
                )
            )
        except Exception:
            logger.warning("could not check the connections' credentials; will retry", exc_info=True)
            return
        for conn in connections:
            if conn.credential_key in revoked and conn.closing_task is None:
                conn.start_closing(session_handler().credential_revoked(conn))

    def _catch_up_done(self, task: asyncio.Task[None]) -> None:
        self._catch_ups.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not catch a connection up with its stream", exc_info=task.exception())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_TICK_S)
            try:
                await self.watch_layer()
            except Exception:
                logger.exception("channel-layer watchdog failed; continuing")

    async def watch_layer(self) -> None:
        """The channel-layer watchdog. A process whose reader has finished no read from Redis for
        CHANNEL_LAYER_WATCHDOG_MS (Redis unreachable from this host, say) would keep sockets that
        answer heartbeats but get no push: it tells each client `shutdown` (close 4012, reconnect
        elsewhere) and refuses handshakes with `service_unavailable` until a read succeeds again."""
        bound_s = settings.CHANNEL_LAYER_WATCHDOG_MS / 1000
        stalled_for = getattr(get_channel_layer(), "stalled_for", None)
        if not bound_s or stalled_for is None:
            return
        stalled = stalled_for()
        if stalled is None:
            return
        gate = admission()
        if stalled < bound_s:
            if gate.layer_down:
                gate.layer_down = False
                logger.info("channel layer readable again; admitting connections")
            return
        if not gate.layer_down:
            gate.layer_down = True
            metrics.CHANNEL_LAYER_WATCHDOG_TRIPS.inc()
            logger.warning(
                "channel layer unread for %.1f s; sending %d connections elsewhere", stalled, len(self._connections)
            )
        moving = [c for c in self.snapshot() if c.opened and not c.ending and c.closing_task is None]
        for conn in moving:
            conn.start_closing(conn.server_shutdown("this server lost its channel layer", held=len(moving)))

    def start(self) -> None:
        """Start the maintenance task at server start, before any connection (reports begin at once)."""
        self._ensure_maintenance()

    def check_connections(self, now_monotonic: float, now_epoch_ms: int) -> None:
        timeout_s = settings.WS_HEARTBEAT_TIMEOUT_MS / 1000
        for consumer in list(self._connections.values()):
            if consumer.ending or consumer.closing_task is not None:
                continue
            if now_monotonic - consumer.last_message_monotonic > timeout_s:
                consumer.start_heartbeat_timeout()
            elif consumer.expires_ms and consumer.expires_ms <= now_epoch_ms:
                consumer.start_expiry()

    async def _maintain(self) -> None:
        tick_s = max(0.05, min(1.0, settings.WS_HEARTBEAT_TIMEOUT_MS / 10_000))
        next_flush = time.monotonic()  # report this process at once
        next_sweep = time.monotonic() + EXPIRY_SWEEP_INTERVAL_S
        next_stream_check = time.monotonic() + settings.SESSION_STREAM_CHECK_INTERVAL_S
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            try:
                self._drop_closed_channel_buffers(now)
                self.check_connections(now, now_ms())
                if now >= next_flush:
                    next_flush = now + settings.PRESENCE_FLUSH_INTERVAL_S
                    # First, and without the database: lapsed entries would let too many connections in.
                    await connections_refresh()
                    await self.flush_presence()
                    await self.report()
                    await self.check_credentials()
                if now >= next_stream_check:
                    next_stream_check = now + settings.SESSION_STREAM_CHECK_INTERVAL_S
                    await self.check_streams()
                if now >= next_sweep:
                    next_sweep = now + EXPIRY_SWEEP_INTERVAL_S
                    registered = chores()
                    if registered is not None:
                        await database_sync_to_async(registered.sweep)()
            except Exception:
                logger.exception("session maintenance failed; continuing")

    async def shutdown_all(self, *, reason: str, grace_s: float, batch_size: int = 500) -> int:
        """Tell every connection to go and close it; wait up to grace_s for them to disconnect.
        Handshakes arriving meanwhile are told to go too (admission is closed first)."""
        admission().close()
        consumers = self.snapshot()
        for start in range(0, len(consumers), batch_size):
            batch = consumers[start : start + batch_size]
            await asyncio.gather(
                *(c.server_shutdown(reason, held=len(consumers)) for c in batch), return_exceptions=True
            )
        deadline = time.monotonic() + grace_s
        # A handshake under way when the signal came tells itself to go once it is done: wait for it too.
        while (self._connections or admission().in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.flush_presence()
        registered = chores()
        if registered is not None:
            with contextlib.suppress(Exception):
                await database_sync_to_async(registered.process_stopped)(process_id=PROCESS_ID)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
        return len(consumers)


live_connections = LiveConnections()
