"""The session app's one way to publish: channel-layer events sent after commit.

Event dicts are what the consumer receives; `type` maps to a consumer method
("session.ended" -> SessionConsumer.session_ended).
"""

from __future__ import annotations

from typing import Literal, TypedDict

from sessions_app.layer import group_send_after_commit, send_after_commit


class ConnectionReplaceEvent(TypedDict):
    type: Literal["connection.replace"]
    generation: int
    sessionId: str


class SessionEndedEvent(TypedDict):
    type: Literal["session.ended"]
    sessionId: str
    status: Literal["stopped", "expired"]
    reason: str


class ConnectionCloseEvent(TypedDict):
    """To one connection's channel: an operator closes it (admin live view)."""

    type: Literal["connection.close"]
    reason: str


SessionAppEvent = ConnectionReplaceEvent | SessionEndedEvent


def publish(group: str, event: SessionAppEvent) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside one)."""
    group_send_after_commit(group, event)


def close_connection(channel_name: str, reason: str) -> None:
    event: ConnectionCloseEvent = {"type": "connection.close", "reason": reason}
    send_after_commit(channel_name, event)
