"""The messages the sockets send themselves: `timeout` (heartbeat silence) and `shutdown`
(the process stops). The error message is sessions_app.realtime.errors.ErrorMessage."""

from __future__ import annotations

from typing import Literal

from sessions_app.realtime.message_base import EpochMs, ServerMessage


class Timeout(ServerMessage):
    """Pushed when no message arrived within heartbeatTimeout; then closed with 4008."""

    type: Literal["timeout"] = "timeout"
    timestamp: EpochMs
    timeoutMs: int
    lastMessageAt: EpochMs
    message: str


class Shutdown(ServerMessage):
    """Pushed when the server process stops; then closed with 4012."""

    type: Literal["shutdown"] = "shutdown"
    timestamp: EpochMs
    reason: str
    reconnectAfterMs: int
