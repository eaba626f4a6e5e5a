"""The sessions domain's channel-layer events (sent with sessions_app.realtime.notify by the
services; handled in sessions_app.handlers)."""

from __future__ import annotations

from typing import Literal, TypedDict


class ConnectionReplaceEvent(TypedDict):
    """To the device's group: a newer connection of the device took its session."""

    type: Literal["connection.replace"]
    generation: int
    sessionId: str


class TokenRevokedEvent(TypedDict):
    """To the device's group: this access token was revoked; sockets living on it end."""

    type: Literal["token.revoked"]
    tokenId: int


class SessionEndedEvent(TypedDict):
    type: Literal["session.ended"]
    sessionId: str
    status: Literal["stopped", "expired"]
    reason: str


class ConnectionCloseEvent(TypedDict):
    """To one connection's channel: an operator closes it (the session is kept)."""

    type: Literal["connection.close"]
    reason: str
