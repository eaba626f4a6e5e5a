"""The session handler the kernel's consumer calls (registered in SessionsAppConfig.ready()).

The handshake: authenticate the token (or ticket) and device; join the device's and the user's
groups (listens_to: the kernel joins them with the connection limits' check); attach the device's
session (resuming the active one or opening a new one, and taking the next connection generation
so an older connection of the device closes) and read the simulator summary; answer `connected`.
The handshakes in flight share each step's trip to the database thread (realtime.Batcher), so a
storm of reconnects costs a few queries per batch, not five per client. It also answers the
kernel's resync and expiry, and the session fields of the live view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app import groups, selectors, services
from sessions_app.auth import authenticate_websocket_requests
from sessions_app.errors import SessionCode
from sessions_app.messages import Connected, ConnectionReplaced, SessionResync
from sessions_app.realtime import (
    Batcher,
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


@dataclass(frozen=True)
class _Attached:
    session: services.AttachedSession
    simulator: Any  # the summary provider's state of the user


def _kernel_tells() -> bool:
    """A layer whose round trips list a group's members (Redis): the kernel tells a device's older
    connections only when there are any (Opening.tell_others); elsewhere the attach does, at once."""
    return callable(getattr(get_channel_layer(), "group_trip", None))


def _attach_many(devices: list[tuple[int, int]]) -> list[_Attached | ProtocolError]:
    # The simulator read comes after the session writes, in the same trip to the database thread.
    attached = services.sessions_attach(devices=devices, announce=not _kernel_tells())
    simulators = summaries().read_many(user_ids=[user_id for user_id, _ in devices])
    return [
        outcome if isinstance(outcome, ProtocolError) else _Attached(outcome, simulators[user_id])
        for (user_id, _), outcome in zip(devices, attached, strict=True)
    ]


# The handshakes in flight share their trips to the database thread: one per step, not one each.
_authenticate = Batcher(authenticate_websocket_requests, name="authenticate")
_attach = Batcher(_attach_many, name="attach")


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
        credential = await _authenticate(conn.scope)
        conn.user_id = credential.user_id
        conn.device_id = credential.device_id
        conn.device_key = credential.device_key
        conn.credential_key = credential.token_id
        state = session_of(conn)
        state.username = credential.username
        state.token_expires_ms = epoch_ms(credential.expires_at)

    def listens_to(self, conn: Connection) -> tuple[str, ...]:
        # Joined before the session is attached, so whatever happens from then on reaches this
        # connection: a newer connection of the device (which takes a later generation) replaces
        # it, and a simulator change after the read in attach() is heard. Events wait in the inbox
        # until the handshake is done.
        return groups.device_group(conn.device_key), groups.user_group(conn.user_id)

    async def attach(self, conn: Connection) -> Opening:
        attached = await _attach((conn.user_id, conn.device_key))
        session = attached.session.session
        state = session_of(conn)
        state.session_token = attached.session.session_token
        state.status = session.status
        state.created_ms = epoch_ms(session.created_at)
        state.expires_ms = epoch_ms(session.expires_at)
        state.generation = attached.session.generation
        state.resumed = attached.session.resumed
        summaries().observe(conn, attached.simulator, only_newer=False)
        generation = attached.session.generation
        return Opening(
            session_id=str(session.id),
            groups=(groups.session_group(session.id),),
            expires_ms=end_by(conn),
            log_fields={"userId": conn.user_id, "deviceId": conn.device_id, "sessionId": str(session.id)},
            # Any older connection of the device joined its group before taking its (lower)
            # generation, so before this one took its own: if the group holds nobody else once
            # this one has attached, there is nothing to replace (one Redis send less per reconnect).
            tell_others=(
                (
                    groups.device_group(conn.device_key),
                    lambda: database_sync_to_async(services.connection_replace_announce)(
                        device_pk=conn.device_key, generation=generation, session_id=str(session.id)
                    ),
                )
                if generation > 1 and _kernel_tells()
                else None
            ),
        )

    async def opened(self, conn: Connection) -> Connected | None:
        state = session_of(conn)
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
