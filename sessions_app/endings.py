"""How a connection ends for a reason of the sessions domain: a newer connection of its device
took over, its session ended or expired, its token expired or was revoked, or it went silent.
Each sends the documented last message and closes with its code (docs/protocol.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine

from channels.db import database_sync_to_async
from django.conf import settings

from sessions_app import selectors, services
from sessions_app.errors import SessionCode
from sessions_app.messages import ConnectionReplaced
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.errors import CloseCode, ProtocolError
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.messages import Timeout


def start_ending(conn: Connection, ending: Coroutine[object, object, None]) -> None:
    """End the connection from outside its loops (the maintenance task, the watchdog): once; a
    second reason while the first is under way is dropped."""
    if conn.closing_task is None:
        conn.closing_task = asyncio.ensure_future(ending)
    else:
        ending.close()


async def replaced(conn: Connection) -> None:
    """A newer connection of this device took the session: tell this one and close it."""
    await conn.end(
        ConnectionReplaced(
            deviceId=conn.device_id,
            sessionId=conn.session_id,
            reason="a newer connection of this device took over the session",
            timestamp=now_ms(),
        ),
        CloseCode.CONNECTION_REPLACED,
    )


async def with_code(conn: Connection, code: SessionCode) -> None:
    """Send the code's `error` and close with its close code."""
    error = ProtocolError(code)
    await conn.end(error.to_message(), error.spec.close or CloseCode.AUTH_FAILED)


async def session_ended(conn: Connection, status: str, reason: str) -> None:
    conn.session.status = status
    code = SessionCode.SESSION_EXPIRED if status == "expired" else SessionCode.SESSION_STOPPED
    error = ProtocolError(code, f"session {status}: {reason}")
    await conn.end(error.to_message(), error.spec.close or CloseCode.SESSION_STOPPED)


async def expired(conn: Connection) -> None:
    """The connection reached its end time: its token's (the client logs in or refreshes and comes
    back) or its session's (which expires for every connection of it)."""
    if conn.session.expires_ms > now_ms():
        await with_code(conn, SessionCode.TOKEN_EXPIRED)
        return
    conn.session.status = "expired"
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is not None:
        await database_sync_to_async(services.session_expire)(session=session)
    # Every connection of the session (this one too) hears `session.ended`; close here as
    # well in case the channel layer is down.
    await session_ended(conn, "expired", "session reached expiresAt")


async def silent(conn: Connection) -> None:
    """No message within heartbeatTimeout."""
    await conn.end(
        Timeout(
            timestamp=now_ms(),
            timeoutMs=settings.WS_HEARTBEAT_TIMEOUT_MS,
            lastMessageAt=conn.last_message_ms,
            message="no message within heartbeatTimeout",
        ),
        CloseCode.HEARTBEAT_TIMEOUT,
    )
