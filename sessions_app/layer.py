"""Sending on the channel layer after the database transaction commits.

Every app's `events.publish` goes through here, so an event never announces a
change that was rolled back, and a channel-layer failure never undoes one that
was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app import metrics

logger = logging.getLogger(__name__)


def group_send_now(group: str, event: dict[str, Any]) -> None:
    """Send at once, from synchronous code (an on_commit callback); failures are logged, not raised."""
    layer = get_channel_layer()
    if layer is None:
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
