"""The session handler the kernel's consumer calls (registered in SessionsAppConfig.ready()).

The handshake: authenticate the token (or ticket) and device, attach the device's session
(resuming the active one or opening a new one, and taking the next connection generation so an
older connection of the device closes), then, once the socket is accepted and its groups joined,
check no newer connection took over meanwhile and answer `connected`. It also answers the
kernel's resync and expiry, and the session fields of the live view.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from sessions_app import groups, selectors, services
from sessions_app.auth import authenticate_websocket_request
from sessions_app.errors import SessionCode
from sessions_app.messages import Connected, ConnectionReplaced, SessionResync
from sessions_app.realtime import (
    CloseCode,
    Connection,
    Opening,
    ProtocolError,
    ResyncReason,
    StreamHead,
    epoch_ms,
    now_ms,
)
from sessions_app.state import end_by, resynced, session_of, summaries


def _generation_and_simulator(device_key: int, user_id: int) -> tuple[int, Any]:
    # One trip to the database thread for both reads.
    return selectors.device_connection_generation(device_key), summaries().read(user_id=user_id)


async def replace(conn: Connection) -> None:
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


async def end_with(conn: Connection, code: SessionCode) -> None:
    """Send the code's `error` and close with its close code."""
    error = ProtocolError(code)
    await conn.end(error.to_message(), error.spec.close or CloseCode.AUTH_FAILED)


async def end_session(conn: Connection, status: str, reason: str) -> None:
    session_of(conn).status = status
    code = SessionCode.SESSION_EXPIRED if status == "expired" else SessionCode.SESSION_STOPPED
    error = ProtocolError(code, f"session {status}: {reason}")
    await conn.end(error.to_message(), error.spec.close or CloseCode.SESSION_STOPPED)


class Sessions:
    async def authenticate(self, conn: Connection) -> None:
        client = await database_sync_to_async(authenticate_websocket_request)(conn.scope)
        conn.user_id = client.user.pk
        conn.device_id = client.device.device_id
        conn.device_key = client.device.pk
        conn.credential_key = client.token.pk
        state = session_of(conn)
        state.username = client.user.get_username()
        state.token_expires_ms = epoch_ms(client.token.expires_at)

    async def attach(self, conn: Connection) -> Opening:
        attached = await database_sync_to_async(services.session_attach)(
            user_id=conn.user_id, device_pk=conn.device_key
        )
        session = attached.session
        state = session_of(conn)
        state.session_token = attached.session_token
        state.status = session.status
        state.created_ms = epoch_ms(session.created_at)
        state.expires_ms = epoch_ms(session.expires_at)
        state.generation = attached.generation
        state.resumed = attached.resumed
        return Opening(
            session_id=str(session.id),
            groups=(
                groups.device_group(conn.device_key),
                groups.session_group(session.id),
                groups.user_group(conn.user_id),
            ),
            expires_ms=end_by(conn),
            log_fields={"userId": conn.user_id, "deviceId": conn.device_id, "sessionId": str(session.id)},
        )

    async def opened(self, conn: Connection) -> Connected | None:
        # Read after joining the groups, so no change announced in between is missed: a newer
        # connection of this device, or a simulator status change.
        newest, simulator = await database_sync_to_async(_generation_and_simulator)(conn.device_key, conn.user_id)
        state = session_of(conn)
        if newest > state.generation:
            await replace(conn)
            return None
        summaries().observe(conn, simulator, only_newer=False)
        summary = summaries().current(conn)
        return Connected(
            sessionId=conn.session_id,
            sessionToken=state.session_token,
            userId=str(conn.user_id),
            deviceId=conn.device_id,
            heartbeatInterval=settings.WS_HEARTBEAT_INTERVAL_MS,
            heartbeatTimeout=settings.WS_HEARTBEAT_TIMEOUT_MS,
            timestamp=now_ms(),
            sessionStatus=state.status,
            createdAt=state.created_ms,
            expiresAt=state.expires_ms,
            resumed=state.resumed,
            simulatorStatus=summary.status,
            simulatorId=summary.simulator_id,
            maxMessageBytes=settings.WS_MAX_MESSAGE_BYTES,
            sessionSeq=conn.stream.start,
            sessionEpoch=conn.stream.epoch,
            tokenExpiresAt=state.token_expires_ms or None,
        )

    async def resynchronise(
        self, conn: Connection, *, reason: ResyncReason, request_id: str | None, head: StreamHead
    ) -> None:
        provider = summaries()
        simulator = await database_sync_to_async(provider.read)(user_id=conn.user_id)
        changed = provider.observe(conn, simulator, only_newer=True)
        summary = provider.current(conn)
        await conn.send_message(
            SessionResync(
                requestId=request_id,
                reason=reason,
                recovered=False,
                replayed=0,
                sessionSeq=head.seq,
                sessionEpoch=head.epoch,
                sessionStatus=session_of(conn).status,
                simulatorStatus=summary.status,
                simulatorId=summary.simulator_id,
                timestamp=now_ms(),
            )
        )
        if changed:
            await provider.announce(conn)
        await resynced.run(conn)

    async def expire(self, conn: Connection) -> None:
        state = session_of(conn)
        if state.expires_ms > now_ms():
            # The token ran out before the session: the client logs in (or refreshes) and comes back.
            await end_with(conn, SessionCode.TOKEN_EXPIRED)
            return
        state.status = "expired"
        session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
        if session is not None:
            await database_sync_to_async(services.session_expire)(session=session)
        # Everyone on the session group (this connection too) hears `session.ended`; close
        # here as well in case the channel layer is down.
        await end_session(conn, "expired", "session reached expiresAt")

    async def credential_revoked(self, conn: Connection) -> None:
        await end_with(conn, SessionCode.TOKEN_REVOKED)

    def describe(self, conn: Connection) -> dict[str, Any]:
        return {"username": session_of(conn).username}
