"""The one way to publish: two verbs, both run once the database transaction commits.

- `push`: a message for clients that changes what they show (a status, an account update). It is
  numbered in each given session's stream before it is sent, so a connection that missed it gets
  it on `reconnect`, and the stream check repairs what the channel layer dropped.
- `notify`: an unnumbered event for a group or one channel: a hint to connections (replaced,
  session ended, closed by an operator), a command to a background worker, a broadcast.
  `notify_now` is its form for the event loop, for a stream with nothing to commit (a simulator's
  own market sends its bars with it).

Called from services only (tests/sessions_app/realtime/test_publish_call_sites.py checks). After
commit, an event never announces a change that was rolled back, and a channel-layer failure never
undoes one that was committed: it is logged and counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app.connection_state import SimulatorSummary
from sessions_app.realtime import metrics
from sessions_app.realtime.errors import CloseCode
from sessions_app.realtime.message_base import ServerMessage
from sessions_app.realtime.session_stream import SessionPushEvent, pending_resets, stream_store

logger = logging.getLogger(__name__)


_server_loop: asyncio.AbstractEventLoop | None = None


def use_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Sends from database threads are handed to this loop without waiting (the server's own)."""
    global _server_loop
    _server_loop = loop


def _handed_to_server_loop(send: Callable[[], Coroutine[Any, Any, None]], kind: str, target: str) -> bool:
    """Schedule `send` on the server's loop from another thread; False when that is not possible.

    async_to_sync would block the (single) database thread until the busy loop got round to
    the send: under a connect storm that wait, once per connect, set the pace.
    """
    loop = _server_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return False
    try:
        if asyncio.get_running_loop() is loop:
            return False
    except RuntimeError:
        pass  # no loop in this thread: the usual case, a database thread

    def report(future: concurrent.futures.Future[None]) -> None:
        error = future.exception() if not future.cancelled() else None
        if isinstance(error, ChannelFull):
            metrics.CHANNEL_LAYER_FAILURES.labels("full").inc()
            logger.warning("channel %s is full; dropped a hint", target)
        elif error is not None:
            metrics.CHANNEL_LAYER_FAILURES.labels(kind).inc()
            logger.error("channel layer send to %s failed", target, exc_info=error)

    asyncio.run_coroutine_threadsafe(send(), loop).add_done_callback(report)
    return True


def group_send_now(group: str, event: dict[str, Any]) -> None:
    """Send from synchronous code (an on_commit callback); failures are logged, not raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    if _handed_to_server_loop(lambda: layer.group_send(group, event), "group", group):
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        metrics.CHANNEL_LAYER_FAILURES.labels("group").inc()
        # Clients still learn the new state from their next request or reconnect.
        logger.exception("channel layer send to group %s failed", group)


def _send_now(channel: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if _handed_to_server_loop(lambda: layer.send(channel, message), "channel", channel):
        return
    try:
        async_to_sync(layer.send)(channel, message)
    except ChannelFull:
        metrics.CHANNEL_LAYER_FAILURES.labels("full").inc()
        # Only hints go to single channels; their receivers also poll the database.
        logger.warning("channel %s is full; dropped a %s hint", channel, message.get("type"))
    except Exception:
        metrics.CHANNEL_LAYER_FAILURES.labels("channel").inc()
        logger.exception("channel layer send to %s failed", channel)


def notify(*, event: Mapping[str, Any], group: str | None = None, channel: str | None = None) -> None:
    """Send `event` to every member of `group`, or to one `channel`, once the transaction commits
    (at once outside one). Unnumbered: for hints and commands whose receivers also read the database."""
    if (group is None) == (channel is None):
        raise ValueError("notify takes a group or a channel")
    payload = dict(event)
    if group is not None:
        transaction.on_commit(lambda: group_send_now(group, payload))
    else:
        assert channel is not None
        transaction.on_commit(lambda: _send_now(channel, payload))


async def notify_now(*, event: Mapping[str, Any], group: str | None = None, channel: str | None = None) -> None:
    """Send `event` to every member of `group`, or to one `channel`, from the event loop, at once: for a
    stream that commits nothing (a simulator's own market, bar by bar, and its acknowledgements). A
    failure is logged and counted, not raised."""
    if (group is None) == (channel is None):
        raise ValueError("notify_now takes a group or a channel")
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if group is not None:
            await layer.group_send(group, dict(event))
        else:
            assert channel is not None
            await layer.send(channel, dict(event))
    except ChannelFull:
        metrics.CHANNEL_LAYER_FAILURES.labels("full").inc()
        logger.warning("channel %s is full; dropped a %s", channel or group, event.get("type"))
    except Exception:
        metrics.CHANNEL_LAYER_FAILURES.labels("group" if group is not None else "channel").inc()
        logger.exception("channel layer send to %s failed", channel or group)


def push(
    *,
    group: str,
    message: ServerMessage | Callable[[], ServerMessage],
    sessions: Sequence[str] | Callable[[], Sequence[str]] = (),
    simulator: SimulatorSummary | None = None,
    closes: CloseCode | None = None,
    device_key: int | None = None,
) -> None:
    """Once the transaction commits, number `message` in each session's stream and send it to `group`.

    `message` and `sessions` may be functions, called after commit: a snapshot built then shows
    the committed state, and the sessions are those open then. A push that changed the user's
    simulator carries its `simulator` summary (each connection keeps it); one after which nothing
    may follow `closes` the connections with that code. With `device_key`, only that device's
    connections among the group's take it.
    """

    def send() -> None:
        built = message if isinstance(message, ServerMessage) else message()
        payload = built.to_json()
        event: SessionPushEvent = {
            "type": "session.push",
            "kind": built.type,
            "payload": payload,
            "positions": _numbered(_ids(sessions), payload, built.type),
        }
        if simulator is not None:
            event["simulator"] = simulator.as_event()
        if closes is not None:
            event["closes"] = int(closes)
        if device_key is not None:
            event["deviceKey"] = device_key
        group_send_now(group, dict(event))

    transaction.on_commit(send)


def _ids(sessions: Sequence[str] | Callable[[], Sequence[str]]) -> list[str]:
    return [str(session_id) for session_id in (sessions() if callable(sessions) else sessions)]


def _numbered(session_ids: Sequence[str], payload: str, kind: str) -> dict[str, list[Any]]:
    """Number `payload` in each session's stream: (epoch, seq) by session; none if the store is down
    (those streams are reset once it answers, so their clients resynchronise)."""
    if not session_ids:
        return {}
    try:
        heads = stream_store().append(session_ids, payload)
    except Exception:
        metrics.STREAM_APPEND_FAILURES.inc()
        logger.exception("could not number a %s push; its streams will be reset", kind)
        pending_resets.add(session_ids)
        return {}
    return {session_id: [head.epoch, head.seq] for session_id, head in heads.items()}
