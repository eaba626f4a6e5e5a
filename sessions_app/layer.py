"""Sending on the channel layer after the database transaction commits.

Every app's `events.publish` goes through here, so an event never announces a
change that was rolled back, and a channel-layer failure never undoes one that
was committed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app import metrics

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


def group_send_after_commit(group: str, event: Mapping[str, Any]) -> None:
    """Send `event` to every member of `group` once the current transaction commits (at once outside one)."""
    payload = dict(event)
    transaction.on_commit(lambda: group_send_now(group, payload))


def send_after_commit(channel: str, message: Mapping[str, Any]) -> None:
    """Send `message` to one channel (one receiver) once the current transaction commits."""
    payload = dict(message)
    transaction.on_commit(lambda: _send_now(channel, payload))
