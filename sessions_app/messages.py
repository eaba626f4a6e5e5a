"""Session and connection messages (protocol sections "Connection Establishment",
"Session Management" and "Connection Management"). Declared once; the handlers,
the services, the schema export and the tests import them from here. `timeout` and
`shutdown`, which the sockets send themselves, are declared in sessions_app.realtime.messages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sessions_app.realtime.message_base import (
    ClientMessage,
    DeviceId,
    EpochMs,
    Omittable,
    RequestId,
    ServerMessage,
    StreamMessage,
)
from sessions_app.realtime.messages import Shutdown, Timeout

ConnectionQuality = Literal["good", "degraded", "poor"]
SessionStatusValue = Literal["active", "stopped", "expired"]
SessionToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]
SessionEpoch = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SessionSeq = Annotated[int, Field(ge=0)]
ResyncReason = Literal["requested", "reconnect", "gap", "epoch_changed"]


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
    # The session stream's position when this connection opened (docs/guarantees.md).
    sessionSeq: int
    sessionEpoch: str
    # An addition: when the access token this socket lives on expires (renew with `refresh_token`).
    tokenExpiresAt: Omittable[EpochMs] = None

    omit_when_none = frozenset({"tokenExpiresAt"})


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
    message: Omittable[str] = None
    sessionStatus: str
    simulatorStatus: str
    # Additions for recovery: whether every push after the client's `lastSessionSeq` was replayed
    # (sent just before this reply), how many, and the stream position now. When `recovered` is
    # false a fresh `exchange_data_status` (reason "resync") follows.
    recovered: bool
    replayed: int
    sessionSeq: int
    sessionEpoch: str

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
    profile: Omittable[str] = Field(default=None, description="The simulator's realism profile (an addition).")
    market: Omittable[str] = Field(
        default=None,
        description="Where the simulator's prices come from (an addition): `shared`, `replay` or `synthetic`.",
    )

    omit_when_none = frozenset({"profile", "market"})


class SessionStopped(ServerMessage):
    type: Literal["session_stopped"] = "session_stopped"
    requestId: str
    success: bool
    message: str
    simulatorStopped: bool


class DeviceIdInvalidated(StreamMessage):
    """Pushed when the device is invalidated; the server then closes with 4003."""

    type: Literal["device_id_invalidated"] = "device_id_invalidated"
    deviceId: str
    reason: Omittable[str] = None
    timestamp: EpochMs

    omit_when_none = StreamMessage.omit_when_none | {"reason"}


class SessionResync(ServerMessage):
    """The client's view must be rebuilt: its stream position is now `sessionSeq` of `sessionEpoch`.

    The reply to `request_resync` (with its `requestId`), or pushed when the server finds pushes
    it can no longer replay (`gap`) or a stream that started afresh (`epoch_changed`). When
    `recovered` is false a fresh `exchange_data_status` (reason "resync") follows at once.
    """

    type: Literal["session_resync"] = "session_resync"
    requestId: Omittable[str] = None
    reason: ResyncReason
    recovered: bool
    replayed: int
    sessionSeq: int
    sessionEpoch: str
    sessionStatus: str
    simulatorStatus: str
    simulatorId: str | None
    timestamp: EpochMs

    omit_when_none = frozenset({"requestId"})


class ConnectionReplaced(ServerMessage):
    """Pushed to the older connection when the same device connects again; then closed with 4009."""

    type: Literal["connection_replaced"] = "connection_replaced"
    deviceId: str
    sessionId: str
    reason: str
    timestamp: EpochMs


class TokenRefreshed(ServerMessage):
    """The reply to `refresh_token`: a new access token for this device. The socket now lives on
    it (it ends when this one expires or is revoked); use it for HTTP calls and the next connection.
    The previous token stays valid until its own expiry."""

    type: Literal["token_refreshed"] = "token_refreshed"
    requestId: str
    token: str
    expiresAt: EpochMs
    timestamp: EpochMs


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
    rttMs: Omittable[Annotated[float, Field(ge=0, le=600_000)]] = None

    reply = HeartbeatAck


class Reconnect(ClientMessage):
    type: Literal["reconnect"]
    deviceId: DeviceId
    sessionToken: SessionToken
    requestId: RequestId
    # Additions for recovery: the last stream position the client applied (from any connection).
    lastSessionSeq: Omittable[SessionSeq] = None
    sessionEpoch: Omittable[SessionEpoch] = None

    reply = ReconnectResult


class RequestResync(ClientMessage):
    """Ask for what was missed after `lastSessionSeq`, or (without it) for a full resync."""

    type: Literal["request_resync"]
    requestId: RequestId
    deviceId: DeviceId
    lastSessionSeq: Omittable[SessionSeq] = None
    sessionEpoch: Omittable[SessionEpoch] = None

    reply = SessionResync


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


class RefreshToken(ClientMessage):
    """Renew the access token in-band, so a long session never has to drop its socket to stay authorized."""

    type: Literal["refresh_token"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = TokenRefreshed


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    Heartbeat,
    Reconnect,
    RequestSessionInfo,
    StopSession,
    RequestResync,
    RefreshToken,
)
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
    SessionResync,
    TokenRefreshed,
)
