"""What the client raises: the server's standard `error` as an exception, and its own failures."""

from __future__ import annotations

from typing import Any

from tradesim.protocol import ErrorCode, ErrorDetail, ErrorMessage


class TradesimError(Exception):
    """Base of everything this library raises."""


class ProtocolError(TradesimError):
    """The standard `error` message (docs/protocol.md section 6), as a request's failure."""

    def __init__(self, message: ErrorMessage | dict[str, Any]) -> None:
        super().__init__(f"{message.get('code')}: {message.get('message')}")
        self.code: ErrorCode = message.get("code", "internal_error")
        self.message: str = str(message.get("message", ""))
        self.details: list[ErrorDetail] = list(message.get("details") or [])
        retry = message.get("retryAfterMs")
        self.retry_after_ms: int | None = retry if isinstance(retry, int) else None
        self.server_message = message


class ApiError(ProtocolError):
    """An HTTP error body (the same shape as `error`), with its status."""

    def __init__(self, status: int, message: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status


class RequestTimeout(TradesimError):
    def __init__(self, kind: str, request_id: str, timeout_s: float) -> None:
        super().__init__(f"no reply to {kind} ({request_id}) within {timeout_s:g} s")
        self.kind = kind
        self.request_id = request_id


class NotConnected(TradesimError):
    """A request made while no socket is open, or one whose socket closed before the reply."""


class SessionEnded(TradesimError):
    """The connection ended for good: `reason` is auth_failed, device_rejected, connection_replaced,
    session_stopped, gave_up or closed (by the client)."""

    def __init__(self, reason: str, code: int | None = None, message: str = "") -> None:
        super().__init__(f"{reason}" + (f" ({code})" if code else "") + (f": {message}" if message else ""))
        self.reason = reason
        self.code = code
        self.message = message
