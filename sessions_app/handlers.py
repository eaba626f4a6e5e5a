"""Handlers of the session and connection messages. Each parses nothing (the
consumer did), checks the caller, calls a service or selector, and replies."""

from __future__ import annotations

from channels.db import database_sync_to_async

from sessions_app import metrics, selectors, services
from sessions_app.consumers import SessionConsumer
from sessions_app.dispatch import after_push, handles, run_connection_hooks
from sessions_app.errors import CloseCode, ErrorCode, ProtocolError
from sessions_app.messages import (
    DeviceIdInvalidated,
    Heartbeat,
    HeartbeatAck,
    Reconnect,
    ReconnectResult,
    RequestResync,
    RequestSessionInfo,
    SessionInfo,
    SessionResync,
    SessionStopped,
    StopSession,
)
from sessions_app.schema import epoch_ms, now_ms
from sessions_app.session_stream import ReplayOutcome
from simulator_app.selectors import simulator_state_of_user


@handles(Heartbeat)
async def heartbeat(conn: SessionConsumer, message: Heartbeat) -> None:
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
            sessionStatus="valid" if conn.session_is_valid() else "invalid",
            simulatorStatus=conn.simulator.status,
        )
    )


@handles(RequestSessionInfo)
async def request_session_info(conn: SessionConsumer, message: RequestSessionInfo) -> None:
    conn.require_own_device(message.deviceId)
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is None:
        raise ProtocolError(ErrorCode.SESSION_NOT_ACTIVE, "the session no longer exists")
    conn.simulator = await database_sync_to_async(simulator_state_of_user)(user_id=session.user_id)
    conn.session_status = session.status
    await conn.send_message(
        SessionInfo(
            requestId=message.requestId,
            sessionId=str(session.id),
            userId=conn.user_id,
            status=session.status,
            deviceId=conn.device_id,
            createdAt=epoch_ms(session.created_at),
            expiresAt=epoch_ms(session.expires_at),
            simulatorStatus=conn.simulator.status,
            simulatorId=conn.simulator.simulator_id,
        )
    )


@handles(StopSession)
async def stop_session(conn: SessionConsumer, message: StopSession) -> None:
    conn.require_own_device(message.deviceId)
    conn.require_active_session()
    session = await database_sync_to_async(selectors.session_by_id)(conn.session_id)
    if session is None:
        raise ProtocolError(ErrorCode.SESSION_NOT_ACTIVE, "the session no longer exists")
    outcome = await database_sync_to_async(services.session_stop)(session=session, reason="stopped by the client")
    conn.session_status = "stopped"
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
async def reconnect(conn: SessionConsumer, message: Reconnect) -> None:
    assert conn.client is not None
    device_id_valid = message.deviceId == conn.device_id
    session_status, simulator = conn.session_status, conn.simulator
    if not device_id_valid:
        success, text = False, f"deviceId {message.deviceId!r} is not this connection's device"
    else:
        outcome = await database_sync_to_async(services.session_resume)(
            user_id=conn.client.user.pk, device=conn.client.device, session_token=message.sessionToken
        )
        success, text, session = outcome.success, outcome.message, outcome.session
        session_status = session.status if session is not None else "unknown"
        if session is not None:
            simulator = await database_sync_to_async(simulator_state_of_user)(user_id=session.user_id)
        if success and session is not None and session.id != conn.session_id:
            success, text = False, "the session was superseded; use the sessionId from `connected`"
        if success:
            conn.simulator = simulator
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
            simulatorStatus=simulator.status,
            recovered=recovery.recovered,
            replayed=recovery.replayed,
            sessionSeq=conn.stream.delivered,
            sessionEpoch=conn.stream.epoch,
        )
    )
    if not success or recovery.recovered:
        return
    if message.lastSessionSeq is None:
        await run_connection_hooks("reconnected", conn)  # a client that does not track the stream
    else:
        metrics.STREAM_RESYNCS.labels("reconnect").inc()
        await run_connection_hooks("resync", conn)


@handles(RequestResync)
async def request_resync(conn: SessionConsumer, message: RequestResync) -> None:
    conn.require_own_device(message.deviceId)
    recovery = await conn.stream.replay_since(
        conn, epoch=message.sessionEpoch, last=message.lastSessionSeq, skip_sent_here=False
    )
    if not recovery.recovered:
        await conn.stream.resync(conn, "requested", message.requestId)
        return
    await conn.send_message(
        SessionResync(
            requestId=message.requestId,
            reason="requested",
            recovered=True,
            replayed=recovery.replayed,
            sessionSeq=conn.stream.delivered,
            sessionEpoch=conn.stream.epoch,
            sessionStatus=conn.session_status,
            simulatorStatus=conn.simulator.status,
            simulatorId=conn.simulator.simulator_id,
            timestamp=now_ms(),
        )
    )


@after_push(DeviceIdInvalidated)
async def close_after_invalidation(conn: SessionConsumer, data: dict[str, object]) -> None:
    # The message itself went out numbered in the stream; nothing may follow it.
    conn.ending = True
    await conn.close(code=int(CloseCode.DEVICE_REJECTED))
