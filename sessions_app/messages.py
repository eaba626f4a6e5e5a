"""Session and connection messages (protocol sections "Connection Establishment",
"Session Management" and "Connection Management"). Declared once; the consumer,
the publishers, the schema export and the tests import them from here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from sessions_app.schema import ClientMessage, DeviceId, EpochMs, RequestId, ServerMessage

ConnectionQuality = Literal["good", "degraded", "poor"]
SessionStatusValue = Literal["active", "stopped", "expired"]
SessionToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]


# --- Server to client -------------------------------------------------------


class Connected(ServerMessage):
    """First message after a successful handshake."""

    type: Literal["connected"] = "connected"
    sessionId: str
    sessionToken: str
    userId: str
    deviceId: str
    heartbeatInterval: int
    heartbeatTimeout: int
    timestamp: EpochMs
    sessionStatus: SessionStatusValue
    createdAt: EpochMs
    expiresAt: EpochMs
    resumed: bool
    simulatorStatus: str
    simulatorId: str | None
    maxMessageBytes: int


class HeartbeatAck(ServerMessage):
    type: Literal["heartbeat_ack"] = "heartbeat_ack"
    timestamp: EpochMs
    clientTimestamp: float
    deviceId: str
    deviceIdValid: bool
    connectionQualityUpdate: ConnectionQuality
    sessionStatus: Literal["valid", "invalid", "pending"]
    simulatorStatus: str


class ReconnectResult(ServerMessage):
    type: Literal["reconnect_result"] = "reconnect_result"
    requestId: str
    success: bool
    deviceId: str
    deviceIdValid: bool
    message: str | SkipJsonSchema[None] = None
    sessionStatus: str
    simulatorStatus: str

    omit_when_none = frozenset({"message"})


class SessionInfo(ServerMessage):
    type: Literal["session_info"] = "session_info"
    requestId: str
    sessionId: str
    userId: str
    status: str
    deviceId: str
    createdAt: EpochMs
    expiresAt: EpochMs
    simulatorStatus: str
    simulatorId: str | None


class SessionStopped(ServerMessage):
    type: Literal["session_stopped"] = "session_stopped"
    requestId: str
    success: bool
    message: str
    simulatorStopped: bool


class DeviceIdInvalidated(ServerMessage):
    """Pushed when the device is invalidated; the server then closes with 4003."""

    type: Literal["device_id_invalidated"] = "device_id_invalidated"
    deviceId: str
    reason: str | SkipJsonSchema[None] = None
    timestamp: EpochMs

    omit_when_none = frozenset({"reason"})


class ConnectionReplaced(ServerMessage):
    """Pushed to the older connection when the same device connects again; then closed with 4009."""

    type: Literal["connection_replaced"] = "connection_replaced"
    deviceId: str
    sessionId: str
    reason: str
    timestamp: EpochMs


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


# --- Client to server -------------------------------------------------------


class Heartbeat(ClientMessage):
    type: Literal["heartbeat"]
    timestamp: float
    deviceId: DeviceId
    connectionQuality: ConnectionQuality
    sessionStatus: Literal["active", "expired", "pending"]
    # The spec's four values, plus `error`, which the server reports and a client may echo back.
    simulatorStatus: Literal["running", "stopped", "starting", "stopping", "error"]
    # An addition: the client's last measured heartbeat round trip (feeds the server's metrics).
    rttMs: Annotated[float, Field(ge=0, le=600_000)] | SkipJsonSchema[None] = None

    reply = HeartbeatAck


class Reconnect(ClientMessage):
    type: Literal["reconnect"]
    deviceId: DeviceId
    sessionToken: SessionToken
    requestId: RequestId

    reply = ReconnectResult


class RequestSessionInfo(ClientMessage):
    type: Literal["request_session_info"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = SessionInfo


class StopSession(ClientMessage):
    type: Literal["stop_session"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = SessionStopped


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (Heartbeat, Reconnect, RequestSessionInfo, StopSession)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    Connected,
    HeartbeatAck,
    ReconnectResult,
    SessionInfo,
    SessionStopped,
    DeviceIdInvalidated,
    ConnectionReplaced,
    Timeout,
    Shutdown,
)
