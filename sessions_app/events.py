"""The session app's one way to publish: channel-layer events sent after commit.

Event dicts are what the consumer receives; `type` maps to a consumer method
("session.ended" -> SessionConsumer.session_ended).
"""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class ConnectionReplaceEvent(TypedDict):
    type: Literal["connection.replace"]
    generation: int
    sessionId: str


class DeviceInvalidatedEvent(TypedDict):
    type: Literal["device.invalidated"]
    deviceId: str
    reason: str


class SessionEndedEvent(TypedDict):
    type: Literal["session.ended"]
    sessionId: str
    status: Literal["stopped", "expired"]
    reason: str


SessionAppEvent = ConnectionReplaceEvent | DeviceInvalidatedEvent | SessionEndedEvent


def _send_now(group: str, event: SessionAppEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, dict(event))
    except Exception:
        # The database change is committed; a lost notification must not undo it. Clients
        # still learn the new state from their next request or reconnect.
        logger.exception("channel layer send to %s failed", group)


def publish(group: str, event: SessionAppEvent) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send_now(group, event))
