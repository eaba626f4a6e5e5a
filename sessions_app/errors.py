"""The one error path: raise ProtocolError anywhere, the consumer (or the HTTP
exception handler) turns it into the standard `error` message.

Every code is listed in ERROR_CODES with what it means and whether the server
closes the connection after sending it (and with which close code).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from sessions_app.schema import EpochMs, ServerMessage, now_ms


class CloseCode(IntEnum):
    """WebSocket close codes the server uses. `reconnects` says what a client should do."""

    INTERNAL_ERROR = 1011
    AUTH_FAILED = 4001
    DEVICE_REJECTED = 4003
    HEARTBEAT_TIMEOUT = 4008
    CONNECTION_REPLACED = 4009
    SESSION_STOPPED = 4010
    SESSION_EXPIRED = 4011
    SERVER_SHUTDOWN = 4012
    TRY_AGAIN_LATER = 4013
    CLOSED_BY_OPERATOR = 4014
    RATE_LIMITED = 4029
    TOO_MANY_CONNECTIONS = 4030


@dataclass(frozen=True)
class CloseCodeSpec:
    reconnect: bool
    meaning: str


CLOSE_CODES: dict[CloseCode, CloseCodeSpec] = {
    CloseCode.INTERNAL_ERROR: CloseCodeSpec(
        True, "Unexpected server failure (sent by daphne). Reconnect with backoff."
    ),
    CloseCode.AUTH_FAILED: CloseCodeSpec(
        False,
        "Token or ticket missing, unknown, used, revoked or expired. Obtain a new token (or ticket) over HTTP "
        "before connecting again.",
    ),
    CloseCode.DEVICE_REJECTED: CloseCodeSpec(
        False, "Device ID missing, unknown, not the token's, or invalidated. Do not reconnect with this device ID."
    ),
    CloseCode.HEARTBEAT_TIMEOUT: CloseCodeSpec(
        True, "No message within heartbeatTimeout. Reconnect and send `reconnect`."
    ),
    CloseCode.CONNECTION_REPLACED: CloseCodeSpec(
        False, "A newer connection of the same device took the session. Do not reconnect from this one."
    ),
    CloseCode.SESSION_STOPPED: CloseCodeSpec(False, "The session was stopped (by `stop_session` or an operator)."),
    CloseCode.SESSION_EXPIRED: CloseCodeSpec(True, "The session expired. Reconnecting opens a new session."),
    CloseCode.SERVER_SHUTDOWN: CloseCodeSpec(True, "The server is going down. Reconnect after `reconnectAfterMs`."),
    CloseCode.TRY_AGAIN_LATER: CloseCodeSpec(
        True, "The server could not open the session (database down). Reconnect with backoff."
    ),
    CloseCode.RATE_LIMITED: CloseCodeSpec(
        True, "The connection kept sending faster than its rate limit. Reconnect with backoff, and send less."
    ),
    CloseCode.CLOSED_BY_OPERATOR: CloseCodeSpec(
        True, "An operator closed this connection (the session is kept). Reconnect with backoff."
    ),
    CloseCode.TOO_MANY_CONNECTIONS: CloseCodeSpec(
        True,
        "The handshake was refused: the user or the client address already has its maximum of open "
        "connections. Reconnect with backoff (or close another connection first).",
    ),
}


class ErrorCode(StrEnum):
    # Frames and schema
    INVALID_JSON = "invalid_json"
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    RATE_LIMITED = "rate_limited"
    RATE_LIMIT_ABUSE = "rate_limit_abuse"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # Handshake (the connection closes)
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_EXPIRED = "token_expired"
    TICKET_INVALID = "ticket_invalid"
    DEVICE_ID_MISSING = "device_id_missing"
    DEVICE_UNKNOWN = "device_unknown"
    DEVICE_MISMATCH = "device_mismatch"
    DEVICE_INVALIDATED = "device_invalidated"
    # Session state
    DEVICE_ID_MISMATCH = "device_id_mismatch"
    SESSION_NOT_ACTIVE = "session_not_active"
    SESSION_STOPPED = "session_stopped"
    SESSION_EXPIRED = "session_expired"
    # Simulator
    SIMULATOR_ALREADY_RUNNING = "simulator_already_running"
    SIMULATOR_NOT_RUNNING = "simulator_not_running"
    SIMULATOR_UNAVAILABLE = "simulator_unavailable"
    # Market and orders
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_POSITION = "insufficient_position"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    MARKET_UNAVAILABLE = "market_unavailable"
    # Server
    CLOSED_BY_OPERATOR = "closed_by_operator"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"
    # HTTP API only
    INVALID_REQUEST = "invalid_request"
    INVALID_CREDENTIALS = "invalid_credentials"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    DEVICE_TAKEN = "device_taken"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class ErrorCodeSpec:
    meaning: str
    close: CloseCode | None = None
    http_status: int = 400


ERROR_CODES: dict[ErrorCode, ErrorCodeSpec] = {
    ErrorCode.INVALID_JSON: ErrorCodeSpec("The text frame is not valid JSON."),
    ErrorCode.BINARY_NOT_SUPPORTED: ErrorCodeSpec("A binary frame was sent; the protocol uses JSON text frames."),
    ErrorCode.NOT_AN_OBJECT: ErrorCodeSpec("The JSON value is not an object."),
    ErrorCode.UNKNOWN_TYPE: ErrorCodeSpec("`type` is missing, not a string, or not a client message type."),
    ErrorCode.INVALID_MESSAGE: ErrorCodeSpec(
        "A field is missing or has the wrong type or format; `details` lists them."
    ),
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCodeSpec("The frame is larger than `maxMessageBytes` (see `connected`)."),
    ErrorCode.RATE_LIMITED: ErrorCodeSpec(
        "Over the connection's rate limit (a burst of WS_RATE_LIMIT_BURST, then WS_RATE_LIMIT_PER_S messages a "
        "second); the message was not handled. Slow down and resend.",
        None,
        429,
    ),
    ErrorCode.RATE_LIMIT_ABUSE: ErrorCodeSpec(
        "The connection stayed over its rate limit (WS_RATE_LIMIT_ABUSE_COUNT refusals within "
        "WS_RATE_LIMIT_ABUSE_WINDOW_S seconds).",
        CloseCode.RATE_LIMITED,
        429,
    ),
    ErrorCode.TOO_MANY_CONNECTIONS: ErrorCodeSpec(
        "The user (WS_MAX_CONNECTIONS_PER_USER) or the client address (WS_MAX_CONNECTIONS_PER_IP) already has "
        "that many connections open; a new connection of a device that is already connected (which replaces "
        "the old one) is not refused. `message` says which limit.",
        CloseCode.TOO_MANY_CONNECTIONS,
        429,
    ),
    ErrorCode.TOKEN_MISSING: ErrorCodeSpec("No `token` (or `ticket`) query parameter.", CloseCode.AUTH_FAILED, 401),
    ErrorCode.TOKEN_INVALID: ErrorCodeSpec(
        "The token is unknown, or its user is disabled.", CloseCode.AUTH_FAILED, 401
    ),
    ErrorCode.TOKEN_REVOKED: ErrorCodeSpec("The token was revoked.", CloseCode.AUTH_FAILED, 401),
    ErrorCode.TOKEN_EXPIRED: ErrorCodeSpec("The token has expired.", CloseCode.AUTH_FAILED, 401),
    ErrorCode.TICKET_INVALID: ErrorCodeSpec(
        "The ticket is unknown, already used, or expired: a ticket from POST /api/auth/ticket/ opens one "
        "connection within WS_TICKET_TTL_S seconds. Get a new one.",
        CloseCode.AUTH_FAILED,
        401,
    ),
    ErrorCode.DEVICE_ID_MISSING: ErrorCodeSpec("No `deviceId` query parameter.", CloseCode.DEVICE_REJECTED, 403),
    ErrorCode.DEVICE_UNKNOWN: ErrorCodeSpec("The device ID is not registered.", CloseCode.DEVICE_REJECTED, 403),
    ErrorCode.DEVICE_MISMATCH: ErrorCodeSpec(
        "The token was issued for another device.", CloseCode.DEVICE_REJECTED, 403
    ),
    ErrorCode.DEVICE_INVALIDATED: ErrorCodeSpec("The device was invalidated.", CloseCode.DEVICE_REJECTED, 403),
    ErrorCode.DEVICE_ID_MISMATCH: ErrorCodeSpec("The message's `deviceId` is not this connection's device."),
    ErrorCode.SESSION_NOT_ACTIVE: ErrorCodeSpec(
        "The action needs an active session, and this one has ended.", None, 409
    ),
    ErrorCode.SESSION_STOPPED: ErrorCodeSpec("The session was stopped by an operator.", CloseCode.SESSION_STOPPED, 409),
    ErrorCode.SESSION_EXPIRED: ErrorCodeSpec("The session reached `expiresAt`.", CloseCode.SESSION_EXPIRED, 409),
    ErrorCode.SIMULATOR_ALREADY_RUNNING: ErrorCodeSpec(
        "This user already has a simulator starting, running or stopping (one at a time); `details` names it.",
        None,
        409,
    ),
    ErrorCode.SIMULATOR_NOT_RUNNING: ErrorCodeSpec(
        "The action needs this user's simulator to be running (to stop one: starting or running), and it is not.",
        None,
        409,
    ),
    ErrorCode.SIMULATOR_UNAVAILABLE: ErrorCodeSpec(
        "No simulator worker is alive to run a simulator; retry later (operators: start `simulator_worker`).",
        None,
        503,
    ),
    ErrorCode.UNKNOWN_SYMBOL: ErrorCodeSpec("The symbol is not a listed, active instrument.", None, 400),
    ErrorCode.INVALID_QUANTITY: ErrorCodeSpec(
        "The quantity is not a positive number with at most 8 decimals (and at most 1,000,000,000).", None, 400
    ),
    ErrorCode.INVALID_PRICE: ErrorCodeSpec(
        "A limit order needs a positive `limitPrice` (at most 1,000,000,000) that is a multiple of the "
        "instrument's tick size; a market order takes none.",
        None,
        400,
    ),
    ErrorCode.INSUFFICIENT_CASH: ErrorCodeSpec(
        "The buy would cost more than the cash not already reserved by open buy orders.", None, 409
    ),
    ErrorCode.INSUFFICIENT_POSITION: ErrorCodeSpec(
        "The sell exceeds the position not already reserved by open sell orders (no short selling).", None, 409
    ),
    ErrorCode.ORDER_NOT_FOUND: ErrorCodeSpec("No such order of this user.", None, 404),
    ErrorCode.ORDER_NOT_CANCELABLE: ErrorCodeSpec("The order is already filled, canceled or rejected.", None, 409),
    ErrorCode.MARKET_UNAVAILABLE: ErrorCodeSpec(
        "The price feed has not produced a price yet; retry shortly.", None, 503
    ),
    ErrorCode.CLOSED_BY_OPERATOR: ErrorCodeSpec(
        "An operator closed this connection from the admin; the session is kept.", CloseCode.CLOSED_BY_OPERATOR, 409
    ),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorCodeSpec(
        "The database or channel layer is unreachable; retry later. At the handshake the server then closes "
        "with 4013; on an open connection only the request fails.",
        None,
        503,
    ),
    ErrorCode.INTERNAL_ERROR: ErrorCodeSpec("An unexpected server error; it is logged.", None, 500),
    ErrorCode.INVALID_REQUEST: ErrorCodeSpec("The body is not valid JSON or fails the schema.", None, 400),
    ErrorCode.INVALID_CREDENTIALS: ErrorCodeSpec("Wrong username or password.", None, 401),
    ErrorCode.AUTHENTICATION_REQUIRED: ErrorCodeSpec("No valid `Authorization: Bearer` token.", None, 401),
    ErrorCode.PERMISSION_DENIED: ErrorCodeSpec("The token may not do this.", None, 403),
    ErrorCode.NOT_FOUND: ErrorCodeSpec("No such resource (or not yours).", None, 404),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorCodeSpec("The method is not allowed on this URL.", None, 405),
    ErrorCode.DEVICE_TAKEN: ErrorCodeSpec("The device ID is registered to another user.", None, 409),
    ErrorCode.THROTTLED: ErrorCodeSpec("Too many attempts; see the Retry-After header.", None, 429),
}


class ErrorDetail(BaseModel):
    field: str
    problem: str


def details_from(error: ValidationError, *, whole: str) -> list[ErrorDetail]:
    """One `details` entry per failed field; `whole` names the object itself when the location is empty."""
    return [
        ErrorDetail(field=".".join(str(part) for part in item["loc"]) or whole, problem=item["msg"])
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]


class ErrorMessage(ServerMessage):
    """The one error shape, on the socket and in HTTP error bodies."""

    type: Literal["error"] = "error"
    requestId: str | None
    code: ErrorCode
    message: str
    timestamp: EpochMs
    details: list[ErrorDetail] | SkipJsonSchema[None] = None

    omit_when_none = frozenset({"details"})


class ProtocolError(Exception):
    """Raise anywhere; becomes the standard `error` message (and HTTP status) for its code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        request_id: str | None = None,
        details: list[ErrorDetail] | None = None,
    ) -> None:
        self.code = code
        self.spec = ERROR_CODES[code]
        self.message = message or self.spec.meaning
        self.request_id = request_id
        self.details = details
        super().__init__(f"{code}: {self.message}")

    def to_message(self) -> ErrorMessage:
        return ErrorMessage(
            requestId=self.request_id,
            code=self.code,
            message=self.message,
            timestamp=now_ms(),
            details=self.details,
        )
