"""Handlers of the session and connection messages, and of the sessions domain's events. Each
parses nothing (the consumer did), checks the caller, calls a service or selector, and replies."""

from __future__ import annotations

import logging
import time
from typing import Any

from channels.db import database_sync_to_async

from sessions_app import selectors, services
from sessions_app.errors import SessionCode
from sessions_app.events import ConnectionReplaceEvent, SessionEndedEvent, TokenRevokedEvent
from sessions_app.handshake import end_session, end_with, replace
from sessions_app.messages import (
    DeviceIdInvalidated,
    Heartbeat,
    HeartbeatAck,
    Reconnect,
    ReconnectResult,
    RefreshToken,
    RequestResync,
    RequestSessionInfo,
    SessionInfo,
    SessionResync,
    SessionStopped,
    StopSession,
    TokenRefreshed,
)
from sessions_app.realtime import (
    Batcher,
    CloseCode,
    Connection,
    ErrorCode,
    ProtocolError,
    ReplayOutcome,
    after_push,
    connected,
    epoch_ms,
    handles,
    handles_event,
    metrics,
    now_ms,
)
from sessions_app.state import (
    end_by,
    reconnected,
    require_active_session,
    require_own_device,
    resynced,
    session_is_valid,
    session_of,
    summaries,
)

logger = logging.getLogger(__name__)

# One token per this many seconds and connection: each refresh is a new row.
REFRESH_MIN_INTERVAL_S = 10.0


def _resume_many(requests: list[tuple[int, int, str]]) -> list[tuple[services.ResumeOutcome, Any]]:
    """The `reconnect` checks in flight and their users' simulator states, in one trip to a
    database thread of their own: a query for the sessions and one for the states (a restarted
    process's clients all come back at once)."""
    outcomes = services.sessions_resume(requests=requests)
    users = [outcome.session.user_id for outcome in outcomes if outcome.session is not None]
    states = summaries().read_many(user_ids=users) if users else {}
    return [(o, states[o.session.user_id] if o.session is not None else None) for o in outcomes]


_resume = Batcher(_resume_many, name="resume")


@connected.connect
async def log_opened(conn: Connection) -> None:
    logger.info("connection opened (session %s)", "resumed" if session_of(conn).resumed else "new")


@handles(Heartbeat)
async def heartbeat(conn: Connection, message: Heartbeat) -> None:
    # The hot path: memory only, no database.
    if message.rttMs is not None:
        metrics.HEARTBEAT_RTT.observe(message.rttMs / 1000)
    await conn.send_message(
        HeartbeatAck(
            timestamp=now_ms(),
            clientTimestamp=message.timestamp,
            deviceId=conn.device_id,
            deviceIdValid=message.deviceId == conn.device_id,
            connectionQualityUpdate=conn.judge.observe(conn.last_message_ms),
            sessionStatus="valid" if session_is_valid(conn) else "invalid",
            simulatorStatus=summaries().current(conn).status,
        )
    )


@handles(RequestSessionInfo)
async def request_session_info(conn: Connection, message: RequestSessionInfo) -> None:
    require_own_device(conn, message.deviceId)
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is None:
        raise ProtocolError(SessionCode.SESSION_NOT_ACTIVE, "the session no longer exists")
    provider = summaries()
    provider.observe(conn, await database_sync_to_async(provider.read)(user_id=session.user_id), only_newer=False)
    session_of(conn).status = session.status
    simulator = provider.current(conn)
    await conn.send_message(
        SessionInfo(
            requestId=message.requestId,
            sessionId=str(session.id),
            userId=str(conn.user_id),
            status=session.status,
            deviceId=conn.device_id,
            createdAt=epoch_ms(session.created_at),
            expiresAt=epoch_ms(session.expires_at),
            simulatorStatus=simulator.status,
            simulatorId=simulator.simulator_id,
            profile=simulator.profile,
        )
    )


@handles(StopSession)
async def stop_session(conn: Connection, message: StopSession) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is None:
        raise ProtocolError(SessionCode.SESSION_NOT_ACTIVE, "the session no longer exists")
    outcome = await database_sync_to_async(services.session_stop)(session=session, reason="stopped by the client")
    session_of(conn).status = "stopped"
    await conn.end(
        SessionStopped(
            requestId=message.requestId,
            success=outcome.stopped,
            message=outcome.message,
            simulatorStopped=outcome.simulator_stopped,
        ),
        CloseCode.SESSION_STOPPED,
    )


@handles(Reconnect)
async def reconnect(conn: Connection, message: Reconnect) -> None:
    provider = summaries()
    device_id_valid = message.deviceId == conn.device_id
    session_status, simulator = session_of(conn).status, provider.current(conn).status
    if not device_id_valid:
        success, text = False, f"deviceId {message.deviceId!r} is not this connection's device"
    else:
        outcome, state = await _resume((conn.user_id, conn.device_key, message.sessionToken))
        success, text, session = outcome.success, outcome.message, outcome.session
        session_status = session.status if session is not None else "unknown"
        if session is not None:
            simulator = provider.summarise(state).status
        if success and session is not None and str(session.id) != conn.session_id:
            success, text = False, "the session was superseded; use the sessionId from `connected`"
        if success:
            provider.observe(conn, state, only_newer=False)
    recovery = ReplayOutcome(recovered=False, replayed=0)
    if success:
        # What the client missed goes out before the reply, so the reply closes the recovery.
        recovery = await conn.stream.replay_since(
            conn, epoch=message.sessionEpoch, last=message.lastSessionSeq, skip_sent_here=True
        )
    await conn.send_message(
        ReconnectResult(
            requestId=message.requestId,
            success=success,
            deviceId=conn.device_id,
            deviceIdValid=device_id_valid,
            message=text,
            sessionStatus=session_status,
            simulatorStatus=simulator,
            recovered=recovery.recovered,
            replayed=recovery.replayed,
            sessionSeq=conn.stream.delivered,
            sessionEpoch=conn.stream.epoch,
        )
    )
    if not success or recovery.recovered:
        return
    if message.lastSessionSeq is None:
        await reconnected.run(conn)  # a client that does not track the stream
    else:
        metrics.STREAM_RESYNCS.labels("reconnect").inc()
        await resynced.run(conn)


@handles(RequestResync)
async def request_resync(conn: Connection, message: RequestResync) -> None:
    require_own_device(conn, message.deviceId)
    recovery = await conn.stream.replay_since(
        conn, epoch=message.sessionEpoch, last=message.lastSessionSeq, skip_sent_here=False
    )
    if not recovery.recovered:
        await conn.stream.resync(conn, "requested", message.requestId)
        return
    simulator = summaries().current(conn)
    await conn.send_message(
        SessionResync(
            requestId=message.requestId,
            reason="requested",
            recovered=True,
            replayed=recovery.replayed,
            sessionSeq=conn.stream.delivered,
            sessionEpoch=conn.stream.epoch,
            sessionStatus=session_of(conn).status,
            simulatorStatus=simulator.status,
            simulatorId=simulator.simulator_id,
            timestamp=now_ms(),
        )
    )


@after_push(DeviceIdInvalidated)
async def close_after_invalidation(conn: Connection, data: dict[str, object]) -> None:
    # The message itself went out numbered in the stream; nothing may follow it.
    conn.ending = True
    await conn.close(code=int(CloseCode.DEVICE_REJECTED))


@handles_event("connection.replace")
async def connection_replace(conn: Connection, event: ConnectionReplaceEvent) -> None:
    if event["generation"] > session_of(conn).generation:
        await replace(conn)


@handles_event("session.ended")
async def session_ended(conn: Connection, event: SessionEndedEvent) -> None:
    if event["sessionId"] == conn.session_id:
        await end_session(conn, event["status"], event["reason"])


@handles(RefreshToken)
async def refresh_token(conn: Connection, message: RefreshToken) -> None:
    require_own_device(conn, message.deviceId)
    state = session_of(conn)
    now = time.monotonic()
    if state.refreshed_at and now - state.refreshed_at < REFRESH_MIN_INTERVAL_S:
        raise ProtocolError(ErrorCode.RATE_LIMITED, f"one refresh_token per {REFRESH_MIN_INTERVAL_S:g} s")
    issued = await database_sync_to_async(services.token_refresh)(token_id=conn.credential_key)
    state.refreshed_at = now
    # The socket now lives on the new token: its expiry moves, and revoking the old one no longer ends it.
    conn.credential_key = issued.token_id
    state.token_expires_ms = epoch_ms(issued.expires_at)
    conn.expires_ms = end_by(conn)
    await conn.send_message(
        TokenRefreshed(
            requestId=message.requestId, token=issued.token, expiresAt=state.token_expires_ms, timestamp=now_ms()
        )
    )


@handles_event("token.revoked")
async def token_revoked(conn: Connection, event: TokenRevokedEvent) -> None:
    if event["tokenId"] == conn.credential_key:
        await end_with(conn, SessionCode.TOKEN_REVOKED)
