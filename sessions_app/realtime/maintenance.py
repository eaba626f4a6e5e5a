"""The chores one task per server process does for its open connections (not one task each).

It ends connections that went silent or reached their end time, writes last-seen times in batches
(heartbeats never touch the database), keeps this process's connection-limit entries alive,
reports the process's connections for the admin's live view, ends connections whose credential
was revoked (bounding the wait when the revocation's own event was lost), repairs a push the
channel layer lost by comparing each connection with its session stream's head, and expires
sessions that reached their end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from sessions_app import endings, recovery, services
from sessions_app.endings import start_ending
from sessions_app.errors import SessionCode
from sessions_app.realtime import presence
from sessions_app.realtime.consumer import Connection, live_connections
from sessions_app.realtime.limits import connections_refresh
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.session_stream import StreamHead, stream_store

logger = logging.getLogger(__name__)

EXPIRY_SWEEP_INTERVAL_S = 60.0
PROCESS_ID = f"{socket.gethostname()[:60]}-{os.getpid()}"
_repairs: set[asyncio.Task[None]] = set()  # stream repairs under way, referenced until done


def _open() -> list[Connection]:
    return [conn for conn in live_connections.values() if conn.opened and not conn.ending]


def end_overdue(now_monotonic: float, now_epoch_ms: int) -> None:
    """Start ending the connections that went silent past heartbeatTimeout or reached their end."""
    timeout_s = settings.WS_HEARTBEAT_TIMEOUT_MS / 1000
    for conn in list(live_connections.values()):
        if conn.ending or conn.closing_task is not None:
            continue
        if now_monotonic - conn.last_message_monotonic > timeout_s:
            start_ending(conn, endings.silent(conn))
        elif conn.expires_ms and conn.expires_ms <= now_epoch_ms:
            start_ending(conn, endings.expired(conn))


async def flush_presence() -> None:
    session_ids, device_keys = presence.take()
    if not session_ids and not device_keys:
        return
    try:
        await database_sync_to_async(services.presence_flush)(
            session_ids=session_ids, device_pks=device_keys, seen_at=timezone.now()
        )
    except Exception:
        logger.exception("could not persist last-seen times; will retry")
        presence.give_back(session_ids, device_keys)


def describe(conn: Connection) -> dict[str, Any]:
    """A connection as the admin's live view and `service_status` show it."""
    return {
        "connectionId": conn.connection_id,
        "channelName": conn.channel_name,
        "userId": conn.user_id,
        "deviceId": conn.device_id,
        "sessionId": conn.session_id,
        "connectedAt": conn.connected_at_ms,
        "lastMessageAt": conn.last_message_ms,
        "username": conn.session.username,
        "simulatorStatus": conn.simulator.status,
    }


async def report() -> None:
    """Tell the database which connections this process holds (the admin's live view)."""
    connections = [describe(conn) for conn in live_connections.values() if conn.opened]
    try:
        await database_sync_to_async(services.server_process_report)(
            process_id=PROCESS_ID, hostname=socket.gethostname(), pid=os.getpid(), connections=connections
        )
    except Exception:
        logger.exception("could not report this process's connections; will retry")


async def end_revoked() -> None:
    """End the connections whose credential was revoked since they opened."""
    connections = [conn for conn in _open() if conn.credential_key and conn.closing_task is None]
    if not connections:
        return
    keys = sorted({conn.credential_key for conn in connections})
    try:
        revoked = set(await database_sync_to_async(services.tokens_revoked)(token_ids=keys))
    except Exception:
        logger.warning("could not check the connections' credentials; will retry", exc_info=True)
        return
    for conn in connections:
        if conn.credential_key in revoked:
            start_ending(conn, endings.with_code(conn, SessionCode.TOKEN_REVOKED))


async def repair_streams() -> None:
    """Send each connection what its stream holds beyond what it sent, or resynchronise it."""
    connections = _open()
    if not connections:
        return
    try:
        heads = await stream_store().heads(sorted({conn.session_id for conn in connections}))
    except Exception:
        logger.warning("could not read the session streams' heads; will retry", exc_info=True)
        return
    for conn in connections:
        head = heads.get(conn.session_id)
        if conn.stream.lags_behind(head):
            task = asyncio.ensure_future(_repair(conn, head))
            _repairs.add(task)
            task.add_done_callback(_repairs.discard)


async def _repair(conn: Connection, head: StreamHead | None) -> None:
    try:
        async with conn.turn:
            await recovery.catch_up(conn, head)
    except Exception:
        logger.warning("could not catch a connection up with its stream", exc_info=True)


async def maintain() -> None:
    """Forever: the chores above, each on its own interval (started with the server process)."""
    tick_s = max(0.05, min(1.0, settings.WS_HEARTBEAT_TIMEOUT_MS / 10_000))
    next_flush = time.monotonic()  # report this process at once
    next_sweep = time.monotonic() + EXPIRY_SWEEP_INTERVAL_S
    next_stream_check = time.monotonic() + settings.SESSION_STREAM_CHECK_INTERVAL_S
    while True:
        await asyncio.sleep(tick_s)
        now = time.monotonic()
        try:
            end_overdue(now, now_ms())
            if now >= next_flush:
                next_flush = now + settings.PRESENCE_FLUSH_INTERVAL_S
                # First, and without the database: lapsed entries would let too many connections in.
                await connections_refresh()
                await flush_presence()
                await report()
                await end_revoked()
            if now >= next_stream_check:
                next_stream_check = now + settings.SESSION_STREAM_CHECK_INTERVAL_S
                await repair_streams()
            if now >= next_sweep:
                next_sweep = now + EXPIRY_SWEEP_INTERVAL_S
                await database_sync_to_async(services.sessions_expire_due)()
        except Exception:
            logger.exception("session maintenance failed; continuing")
