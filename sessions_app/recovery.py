"""Keeping a connection's client in step with its session stream (sessions_app.realtime.session_stream).

Pushes arrive through the channel layer, which may drop or reorder them: a live push is sent in
order, a gap is filled from the stream's buffer first, a duplicate is dropped, and when the buffer
cannot help the client is resynchronised (`session_resync`, then the apps above send a fresh
snapshot: sessions_app.signals.connection_resynced). The same buffer answers `reconnect` and
`request_resync`, and the maintenance task's repair of a push the layer lost. Every function here
runs in the connection's turn (a frame, an event, or the maintenance task holding `conn.turn`).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from sessions_app import selectors
from sessions_app.messages import SessionResync
from sessions_app.realtime import metrics
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.session_stream import ReplayOutcome, ResyncReason, StreamHead, stream_store, with_position
from sessions_app.signals import connection_resynced, simulator_changed


async def deliver(conn: Connection, *, epoch: str, seq: int, payload: str, kind: str) -> None:
    """Send a live push in order: fill a gap from the buffer first, drop what was sent already."""
    cursor = conn.stream
    if epoch != cursor.epoch:
        await resync(conn, "epoch_changed", None)
    elif seq <= cursor.delivered:
        return
    elif seq > cursor.delivered + 1 and not await _fill(conn, until=seq - 1):
        await resync(conn, "gap", None)
    else:
        await conn.send_text(with_position(payload, cursor.epoch, seq), kind)
        cursor.delivered = seq


async def _fill(conn: Connection, *, until: int | None = None) -> bool:
    """Send what the buffer holds after the last number sent (up to `until`); False if it cannot."""
    cursor = conn.stream
    replay = await stream_store().read_after(cursor.session_id, cursor.delivered)
    if replay is None or replay.epoch != cursor.epoch or not replay.complete:
        return False
    for seq, payload in replay.entries:
        if until is not None and seq > until:
            break
        await conn.send_text(with_position(payload, cursor.epoch, seq))
        cursor.delivered = seq
        metrics.STREAM_REPLAYED.inc()
    return True


async def replay_since(conn: Connection, *, epoch: str | None, last: int | None, skip_sent_here: bool) -> ReplayOutcome:
    """Send what the client missed after `last`. On `reconnect` (`skip_sent_here`), what this
    connection already sent live is not sent twice; on `request_resync` the client's word counts."""
    cursor = conn.stream
    if epoch is None or last is None or epoch != cursor.epoch:
        return ReplayOutcome(recovered=False, replayed=0)
    replay = await stream_store().read_after(cursor.session_id, last)
    if replay is None or replay.epoch != cursor.epoch or not replay.complete:
        return ReplayOutcome(recovered=False, replayed=0)
    sent = 0
    for seq, payload in replay.entries:
        # (start, delivered] went out live on this connection already.
        if not skip_sent_here or seq <= cursor.start or seq > cursor.delivered:
            await conn.send_text(with_position(payload, cursor.epoch, seq))
            cursor.delivered = max(cursor.delivered, seq)
            sent += 1
    metrics.STREAM_REPLAYED.inc(sent)
    return ReplayOutcome(recovered=True, replayed=sent)


async def resync(conn: Connection, reason: ResyncReason, request_id: str | None) -> None:
    """The client must rebuild its state: tell it its new stream position, then the apps above
    send what it rebuilds from."""
    # The head is read before the snapshot is built: every push numbered up to it was sent after
    # its transaction committed, so the snapshot already shows it.
    head = await stream_store().head(conn.session_id)
    conn.stream.restart(head)
    metrics.STREAM_RESYNCS.labels(reason).inc()
    summary = await database_sync_to_async(selectors.simulator_summary_of_user)(user_id=conn.user_id)
    changed = summary.supersedes(conn.simulator)
    if changed:
        conn.simulator = summary
    await conn.send_message(resync_message(conn, reason=reason, request_id=request_id, head=head, replayed=None))
    if changed:
        await simulator_changed.asend(sender=Connection, connection=conn)
    await connection_resynced.asend(sender=Connection, connection=conn, reason="resync")


def resync_message(
    conn: Connection, *, reason: ResyncReason, request_id: str | None, head: StreamHead, replayed: int | None
) -> SessionResync:
    """`session_resync`: recovered from the buffer (`replayed` pushes sent just before it) or not (None)."""
    return SessionResync(
        requestId=request_id,
        reason=reason,
        recovered=replayed is not None,
        replayed=replayed or 0,
        sessionSeq=head.seq,
        sessionEpoch=head.epoch,
        sessionStatus=conn.session.status,
        simulatorStatus=conn.simulator.status,
        simulatorId=conn.simulator.simulator_id,
        timestamp=now_ms(),
    )


async def catch_up(conn: Connection, head: StreamHead | None) -> None:
    """The maintenance task's repair: a push the channel layer lost, or a stream Redis lost."""
    if conn.ending:
        return
    if head is None or head.epoch != conn.stream.epoch:
        await resync(conn, "epoch_changed", None)
    elif head.seq > conn.stream.delivered and not await _fill(conn):
        await resync(conn, "gap", None)
