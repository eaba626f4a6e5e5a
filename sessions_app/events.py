"""The sessions domain's channel-layer events (sent with sessions_app.realtime.notify by the
services; handled in sessions_app.handlers).

All but one go to the user's group, the one group a connection joins besides its own channel;
each names the device, token or session it is for, and the other connections ignore it."""

from __future__ import annotations

from typing import Literal, TypedDict


class ConnectionReplaceEvent(TypedDict):
    """A newer connection of the device took its session."""

    type: Literal["connection.replace"]
    deviceKey: int
    generation: int
    sessionId: str


class TokenRevokedEvent(TypedDict):
    """This access token was revoked; sockets living on it end."""

    type: Literal["token.revoked"]
    tokenId: int


class SessionEndedEvent(TypedDict):
    """The session ended (stopped or expired); its connections end."""

    type: Literal["session.ended"]
    sessionId: str
    status: Literal["stopped", "expired"]
    reason: str


class ConnectionCloseEvent(TypedDict):
    """To one connection's channel: an operator closes it (the session is kept)."""

    type: Literal["connection.close"]
    reason: str
