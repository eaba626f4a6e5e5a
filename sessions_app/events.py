"""The session app's one way to publish: channel-layer events sent after commit.

Event dicts are what the consumer receives; `type` maps to a consumer method
("session.ended" -> SessionConsumer.session_ended).
"""

from __future__ import annotations

from typing import Literal, TypedDict

from sessions_app.layer import group_send_after_commit


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


def publish(group: str, event: SessionAppEvent) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside one)."""
    group_send_after_commit(group, event)
