"""The one error path: raise ProtocolError anywhere; the consumer (or the HTTP exception
handler) turns it into the standard `error` message.

Each app declares its codes as a StrEnum and registers them with their meaning, the close
code the server closes with after sending one (None: the connection stays open) and the
HTTP status. The catalogue (codes.md, the schema's `ErrorCode` enum) lists them by kind,
in the order each kind's apps registered them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal

from django.db import DatabaseError
from pydantic import BaseModel, ValidationError, model_validator

from sessions_app.realtime.message_base import EpochMs, Omittable, ServerMessage, now_ms


class CloseCode(IntEnum):
    """WebSocket close codes the server uses; CLOSE_CODES says whether a client should reconnect."""

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
    UNSUPPORTED_SUBPROTOCOL = 4015


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
    CloseCode.SERVER_SHUTDOWN: CloseCodeSpec(
        True,
        "The server is going down, or can deliver no pushes (it lost its channel layer). Reconnect after "
        "`reconnectAfterMs`.",
    ),
    CloseCode.TRY_AGAIN_LATER: CloseCodeSpec(
        True,
        "The server could not open the session now (busy admitting others, or the database down). Reconnect "
        "after the `error`'s `retryAfterMs` when it has one, else with backoff.",
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
    CloseCode.UNSUPPORTED_SUBPROTOCOL: CloseCodeSpec(
        False,
        "The client offered only WebSocket subprotocols the server does not speak (it speaks `tradesim.json` "
        "and `tradesim.msgpack`). Reconnect offering one of those, or none. (A browser fails such a "
        "handshake itself, before this close.)",
    ),
}


class CodeKind(IntEnum):
    """Where a code belongs in the catalogue (the order codes.md and the schema list them in)."""

    FRAME = 1  # the frame or its schema, limits
    HANDSHAKE = 2  # the connection is refused
    REQUEST = 3  # a request the application refuses
    SERVER = 4  # the server or an operator
    HTTP = 5  # the HTTP API only


@dataclass(frozen=True)
class ErrorCodeSpec:
    meaning: str
    close: CloseCode | None = None
    http_status: int = 400


_CODES: dict[str, tuple[StrEnum, ErrorCodeSpec, CodeKind, int]] = {}


def register_error_codes(kind: CodeKind, specs: Mapping[StrEnum, ErrorCodeSpec]) -> None:
    """Add an app's codes to the catalogue. A code's value is unique across every app."""
    for code, spec in specs.items():
        if code.value in _CODES:
            raise RuntimeError(f"error code {code.value!r} registered twice")
        _CODES[code.value] = (code, spec, kind, len(_CODES))


def error_codes() -> list[tuple[StrEnum, ErrorCodeSpec]]:
    """Every registered code with its spec, in catalogue order."""
    entries = sorted(_CODES.values(), key=lambda entry: (entry[2], entry[3]))
    return [(code, spec) for code, spec, _, _ in entries]


def socket_error_codes() -> list[tuple[StrEnum, ErrorCodeSpec]]:
    """The codes the socket can send (every kind but the HTTP API's own), in catalogue order."""
    entries = sorted(_CODES.values(), key=lambda entry: (entry[2], entry[3]))
    return [(code, spec) for code, spec, kind, _ in entries if kind != CodeKind.HTTP]


def spec_of(code: StrEnum) -> ErrorCodeSpec:
    return _CODES[code.value][1]


class ErrorCode(StrEnum):
    """The sockets' own codes: frames, limits and the server."""

    INVALID_JSON = "invalid_json"
    INVALID_MSGPACK = "invalid_msgpack"
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    UNSUPPORTED_SUBPROTOCOL = "unsupported_subprotocol"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    RATE_LIMITED = "rate_limited"
    RATE_LIMIT_ABUSE = "rate_limit_abuse"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    CLOSED_BY_OPERATOR = "closed_by_operator"
    SERVER_BUSY = "server_busy"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"


register_error_codes(
    CodeKind.FRAME,
    {
        ErrorCode.INVALID_JSON: ErrorCodeSpec("The text frame is not valid JSON."),
        ErrorCode.INVALID_MSGPACK: ErrorCodeSpec(
            "The binary frame of a `tradesim.msgpack` connection is not one MessagePack value (or its strings "
            "are not UTF-8)."
        ),
        ErrorCode.BINARY_NOT_SUPPORTED: ErrorCodeSpec(
            "A binary frame was sent on a JSON connection (MessagePack frames need the `tradesim.msgpack` subprotocol)."
        ),
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
    },
)
register_error_codes(
    CodeKind.HANDSHAKE,
    {
        ErrorCode.UNSUPPORTED_SUBPROTOCOL: ErrorCodeSpec(
            "The client offered only WebSocket subprotocols the server does not speak: `tradesim.json` (or none) "
            "for JSON, `tradesim.msgpack` for MessagePack.",
            CloseCode.UNSUPPORTED_SUBPROTOCOL,
            400,
        ),
    },
)
register_error_codes(
    CodeKind.SERVER,
    {
        ErrorCode.CLOSED_BY_OPERATOR: ErrorCodeSpec(
            "An operator closed this connection from the admin; the session is kept.",
            CloseCode.CLOSED_BY_OPERATOR,
            409,
        ),
        ErrorCode.SERVER_BUSY: ErrorCodeSpec(
            "The process already has WS_MAX_HANDSHAKES_IN_FLIGHT handshakes under way: this one was refused at "
            "once (close 4013) instead of queueing. `retryAfterMs` is this client's slot to come back in, spaced "
            "from the others refused at the rate the process admits clients.",
            CloseCode.TRY_AGAIN_LATER,
            503,
        ),
        ErrorCode.SERVICE_UNAVAILABLE: ErrorCodeSpec(
            "The database or channel layer is unreachable; retry later. At the handshake the server then closes "
            "with 4013; on an open connection only the request fails.",
            None,
            503,
        ),
        ErrorCode.INTERNAL_ERROR: ErrorCodeSpec("An unexpected server error; it is logged.", None, 500),
    },
)


# A Python string decoded from JSON holds a surrogate code point only when the text had a lone
# `\ud800`-style escape (a pair becomes one code point): such a string has no UTF-8 form.
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_ECHOED_REQUEST_ID = 128  # RequestId's own bound (schema.RequestId)
MAX_ERROR_TEXT = 1024


def is_unicode(text: str) -> bool:
    """Whether `text` can be encoded (no lone surrogate)."""
    return _SURROGATE.search(text) is None


def echoable_request_id(value: object) -> str | None:
    """A client's `requestId` as the error echoes it: only a string RequestId accepts, else null."""
    if isinstance(value, str) and len(value) <= MAX_ECHOED_REQUEST_ID and is_unicode(value):
        return value
    return None


def safe_text(text: str, *, limit: int = MAX_ERROR_TEXT) -> str:
    """Text that can always be sent: lone surrogates become U+FFFD, and it is cut at `limit`."""
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return _SURROGATE.sub("\ufffd", text)


def lone_surrogate_at(value: object, path: str = "") -> str | None:
    """The dotted path of the first string (a value or a key) in decoded JSON that holds a lone
    surrogate, "" for the value itself, None when there is none."""
    if isinstance(value, str):
        return None if is_unicode(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not is_unicode(key):
                return inner
            found = lone_surrogate_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


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
    # Any registered code; the export lists them all as the `ErrorCode` enum.
    code: str
    message: str
    timestamp: EpochMs
    details: Omittable[list[ErrorDetail]] = None
    # When to try again, in ms from now (server_busy); the client's backoff applies when absent.
    retryAfterMs: Omittable[int] = None

    omit_when_none = frozenset({"details", "retryAfterMs"})

    @model_validator(mode="after")
    def _echo_safely(self) -> ErrorMessage:
        # The one place the standard error is made: whatever it echoes from a client (a requestId,
        # a field path, a value quoted in a message) must serialise, or the error itself would fail.
        self.requestId = echoable_request_id(self.requestId)
        self.message = safe_text(self.message)
        if self.details:
            for detail in self.details:
                detail.field = safe_text(detail.field, limit=256)
                detail.problem = safe_text(detail.problem)
        return self


class ProtocolError(Exception):
    """Raise anywhere; becomes the standard `error` message (and HTTP status) for its code."""

    def __init__(
        self,
        code: StrEnum,
        message: str | None = None,
        *,
        request_id: str | None = None,
        details: list[ErrorDetail] | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        self.code = code
        self.retry_after_ms = retry_after_ms
        self.spec = spec_of(code)
        self.message = message or self.spec.meaning
        self.request_id = request_id
        self.details = details
        super().__init__(f"{code}: {self.message}")

    def to_message(self) -> ErrorMessage:
        return ErrorMessage(
            requestId=self.request_id,
            code=self.code.value,
            message=self.message,
            timestamp=now_ms(),
            details=self.details,
            retryAfterMs=self.retry_after_ms,
        )


def as_protocol_error(error: Exception) -> ProtocolError:
    """Any failure as the error a client is told: its own, `service_unavailable` (retryable) when a
    backing service did not answer (a Redis pool that stayed busy through a storm, the database
    down), else `internal_error`."""
    # Imported here: redis-py (and the cryptography it loads) is a tenth of a second of every
    # process's start, and a process without Redis never needs it.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(error, ProtocolError):
        return error
    if isinstance(error, (DatabaseError, RedisConnectionError, RedisTimeoutError)):
        return ProtocolError(ErrorCode.SERVICE_UNAVAILABLE)
    return ProtocolError(ErrorCode.INTERNAL_ERROR)
