"""Handlers of the session and connection messages, and of the sessions domain's events. Each
parses nothing (the consumer did), checks the caller, calls a service or selector, and replies."""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async

from sessions_app import endings, recovery, selectors, services
from sessions_app.checks import require_active_session, require_own_device, session_is_valid
from sessions_app.connection_state import NO_SIMULATOR, SimulatorSummary
from sessions_app.errors import SessionCode
from sessions_app.events import ConnectionCloseEvent, ConnectionReplaceEvent, SessionEndedEvent, TokenRevokedEvent
from sessions_app.messages import (
    Heartbeat,
    HeartbeatAck,
    Reconnect,
    ReconnectResult,
    RefreshToken,
    RequestResync,
    RequestSessionInfo,
    SessionInfo,
    SessionStopped,
    StopSession,
    TokenRefreshed,
)
from sessions_app.realtime import metrics
from sessions_app.realtime.batching import Batcher
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.errors import CloseCode, ErrorCode, ProtocolError
from sessions_app.realtime.message_base import epoch_ms, now_ms
from sessions_app.realtime.message_routes import handles, handles_event
from sessions_app.realtime.session_stream import ReplayOutcome, SessionPushEvent, StreamHead
from sessions_app.signals import connection_resynced, simulator_changed

logger = logging.getLogger(__name__)

# One token per this many seconds and connection: each refresh is a new row.
REFRESH_MIN_INTERVAL_S = 10.0


def _resume_many(requests: list[tuple[int, int, str]]) -> list[tuple[services.ResumeOutcome, SimulatorSummary]]:
    """The `reconnect` checks in flight and their users' simulators, in one trip to a database
    thread of their own: a query for the sessions and one for the simulators (a restarted
    process's clients all come back at once)."""
    outcomes = services.sessions_resume(requests=requests)
    users = [outcome.session.user_id for outcome in outcomes if outcome.session is not None]
    summaries = selectors.simulator_summaries_of_users(user_ids=users) if users else {}
    return [(o, summaries[o.session.user_id] if o.session is not None else NO_SIMULATOR) for o in outcomes]


_resume = Batcher(_resume_many, name="resume")


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
            simulatorStatus=conn.simulator.status,
        )
    )


@handles(RequestSessionInfo)
async def request_session_info(conn: Connection, message: RequestSessionInfo) -> None:
    require_own_device(conn, message.deviceId)
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is None:
        raise ProtocolError(SessionCode.SESSION_NOT_ACTIVE, "the session no longer exists")
    simulator = await database_sync_to_async(selectors.simulator_summary_of_user)(user_id=session.user_id)
    conn.simulator = simulator
    conn.session.status = session.status
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
            market=simulator.market if simulator.simulator_id else None,
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
    conn.session.status = "stopped"
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
    device_id_valid = message.deviceId == conn.device_id
    session_status, simulator = conn.session.status, conn.simulator.status
    if not device_id_valid:
        success, text = False, f"deviceId {message.deviceId!r} is not this connection's device"
    else:
        outcome, summary = await _resume((conn.user_id, conn.device_key, message.sessionToken))
        success, text, session = outcome.success, outcome.message, outcome.session
        session_status = session.status if session is not None else "unknown"
        if session is not None:
            simulator = summary.status
        if success and session is not None and str(session.id) != conn.session_id:
            success, text = False, "the session was superseded; use the sessionId from `connected`"
        if success:
            conn.simulator = summary
    replay = ReplayOutcome(recovered=False, replayed=0)
    if success:
        # What the client missed goes out before the reply, so the reply closes the recovery.
        replay = await recovery.replay_since(
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
            recovered=replay.recovered,
            replayed=replay.replayed,
            sessionSeq=conn.stream.delivered,
            sessionEpoch=conn.stream.epoch,
        )
    )
    if not success or replay.recovered:
        return
    if message.lastSessionSeq is None:  # a client that does not track the stream
        await connection_resynced.asend(sender=Connection, connection=conn, reason="reconnected")
    else:
        metrics.STREAM_RESYNCS.labels("reconnect").inc()
        await connection_resynced.asend(sender=Connection, connection=conn, reason="resync")


@handles(RequestResync)
async def request_resync(conn: Connection, message: RequestResync) -> None:
    require_own_device(conn, message.deviceId)
    replay = await recovery.replay_since(
        conn, epoch=message.sessionEpoch, last=message.lastSessionSeq, skip_sent_here=False
    )
    if not replay.recovered:
        await recovery.resync(conn, "requested", message.requestId)
        return
    head = StreamHead(conn.stream.epoch, conn.stream.delivered)
    await conn.send_message(
        recovery.resync_message(
            conn, reason="requested", request_id=message.requestId, head=head, replayed=replay.replayed
        )
    )


@handles_event("session.push")
async def session_push(conn: Connection, event: SessionPushEvent) -> None:
    if event.get("deviceKey", conn.device_key) != conn.device_key:
        return  # for another device of the user
    position = event["positions"].get(conn.session_id)
    if position is None:
        # Not numbered (the stream store was down, or a session opened after the push).
        await conn.send_text(event["payload"], event["kind"])
    else:
        epoch, seq = position
        await recovery.deliver(conn, epoch=epoch, seq=seq, payload=event["payload"], kind=event["kind"])
    simulator = event.get("simulator")
    if simulator is not None and (summary := SimulatorSummary.of_event(simulator)).supersedes(conn.simulator):
        conn.simulator = summary
        await simulator_changed.asend(sender=Connection, connection=conn)
    closes = event.get("closes")
    if closes is not None:
        # Its message (device_id_invalidated) went out numbered in the stream; nothing may follow it.
        conn.ending = True
        await conn.close(code=closes)


@handles_event("connection.replace")
async def connection_replace(conn: Connection, event: ConnectionReplaceEvent) -> None:
    if event["deviceKey"] == conn.device_key and event["generation"] > conn.session.generation:
        await endings.replaced(conn)


@handles_event("session.ended")
async def session_ended(conn: Connection, event: SessionEndedEvent) -> None:
    if event["sessionId"] == conn.session_id:
        await endings.session_ended(conn, event["status"], event["reason"])


@handles_event("connection.close")
async def connection_close(conn: Connection, event: ConnectionCloseEvent) -> None:
    """An operator closes this connection (the session is kept)."""
    error = ProtocolError(ErrorCode.CLOSED_BY_OPERATOR, event["reason"] or None)
    await conn.end(error.to_message(), CloseCode.CLOSED_BY_OPERATOR)


@handles(RefreshToken)
async def refresh_token(conn: Connection, message: RefreshToken) -> None:
    require_own_device(conn, message.deviceId)
    state = conn.session
    now = time.monotonic()
    if state.refreshed_at and now - state.refreshed_at < REFRESH_MIN_INTERVAL_S:
        raise ProtocolError(ErrorCode.RATE_LIMITED, f"one refresh_token per {REFRESH_MIN_INTERVAL_S:g} s")
    issued = await database_sync_to_async(services.token_refresh)(token_id=conn.credential_key)
    state.refreshed_at = now
    # The socket now lives on the new token: its expiry moves, and revoking the old one no longer ends it.
    conn.credential_key = issued.token_id
    state.token_expires_ms = epoch_ms(issued.expires_at)
    conn.expires_ms = state.ends_at()
    await conn.send_message(
        TokenRefreshed(
            requestId=message.requestId, token=issued.token, expiresAt=state.token_expires_ms, timestamp=now_ms()
        )
    )


@handles_event("token.revoked")
async def token_revoked(conn: Connection, event: TokenRevokedEvent) -> None:
    if event["tokenId"] == conn.credential_key:
        await endings.with_code(conn, SessionCode.TOKEN_REVOKED)
