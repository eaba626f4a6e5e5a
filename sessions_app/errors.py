"""The sessions domain's error codes: the handshake (tokens, tickets, devices), the session's
state, and the HTTP API. Registered with the error catalogue (sessions_app.realtime.errors) when
this module is imported."""

from __future__ import annotations

from enum import StrEnum

from sessions_app.realtime.errors import CloseCode, CodeKind, ErrorCodeSpec, register_error_codes


class SessionCode(StrEnum):
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


class HttpCode(StrEnum):
    """Codes of the HTTP API only."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CREDENTIALS = "invalid_credentials"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    DEVICE_TAKEN = "device_taken"
    THROTTLED = "throttled"


register_error_codes(
    CodeKind.HANDSHAKE,
    {
        SessionCode.TOKEN_MISSING: ErrorCodeSpec(
            "No `token` (or `ticket`) query parameter.", CloseCode.AUTH_FAILED, 401
        ),
        SessionCode.TOKEN_INVALID: ErrorCodeSpec(
            "The token is unknown, or its user is disabled.", CloseCode.AUTH_FAILED, 401
        ),
        SessionCode.TOKEN_REVOKED: ErrorCodeSpec("The token was revoked.", CloseCode.AUTH_FAILED, 401),
        SessionCode.TOKEN_EXPIRED: ErrorCodeSpec("The token has expired.", CloseCode.AUTH_FAILED, 401),
        SessionCode.TICKET_INVALID: ErrorCodeSpec(
            "The ticket is unknown, already used, or expired: a ticket from POST /api/auth/ticket/ opens one "
            "connection within WS_TICKET_TTL_S seconds. Get a new one.",
            CloseCode.AUTH_FAILED,
            401,
        ),
        SessionCode.DEVICE_ID_MISSING: ErrorCodeSpec("No `deviceId` query parameter.", CloseCode.DEVICE_REJECTED, 403),
        SessionCode.DEVICE_UNKNOWN: ErrorCodeSpec("The device ID is not registered.", CloseCode.DEVICE_REJECTED, 403),
        SessionCode.DEVICE_MISMATCH: ErrorCodeSpec(
            "The token was issued for another device.", CloseCode.DEVICE_REJECTED, 403
        ),
        SessionCode.DEVICE_INVALIDATED: ErrorCodeSpec("The device was invalidated.", CloseCode.DEVICE_REJECTED, 403),
    },
)
register_error_codes(
    CodeKind.REQUEST,
    {
        SessionCode.DEVICE_ID_MISMATCH: ErrorCodeSpec("The message's `deviceId` is not this connection's device."),
        SessionCode.SESSION_NOT_ACTIVE: ErrorCodeSpec(
            "The action needs an active session, and this one has ended.", None, 409
        ),
        SessionCode.SESSION_STOPPED: ErrorCodeSpec(
            "The session was stopped by an operator.", CloseCode.SESSION_STOPPED, 409
        ),
        SessionCode.SESSION_EXPIRED: ErrorCodeSpec("The session reached `expiresAt`.", CloseCode.SESSION_EXPIRED, 409),
    },
)
register_error_codes(
    CodeKind.HTTP,
    {
        HttpCode.INVALID_REQUEST: ErrorCodeSpec(
            "The body is not valid JSON, or the body, a query or a path parameter fails the schema; `details` "
            "names the fields.",
            None,
            400,
        ),
        HttpCode.INVALID_CREDENTIALS: ErrorCodeSpec("Wrong username or password.", None, 401),
        HttpCode.AUTHENTICATION_REQUIRED: ErrorCodeSpec("No valid `Authorization: Bearer` token.", None, 401),
        HttpCode.PERMISSION_DENIED: ErrorCodeSpec("The token may not do this.", None, 403),
        HttpCode.NOT_FOUND: ErrorCodeSpec("No such resource (or not yours).", None, 404),
        HttpCode.METHOD_NOT_ALLOWED: ErrorCodeSpec(
            "The method is not allowed on this URL; the `Allow` header lists those that are.", None, 405
        ),
        HttpCode.NOT_ACCEPTABLE: ErrorCodeSpec(
            "The `Accept` header asks for no media type this URL answers with (JSON, and CSV where stated).",
            None,
            406,
        ),
        HttpCode.UNSUPPORTED_MEDIA_TYPE: ErrorCodeSpec("The body is not `application/json`.", None, 415),
        HttpCode.DEVICE_TAKEN: ErrorCodeSpec("The device ID is registered to another user.", None, 409),
        HttpCode.THROTTLED: ErrorCodeSpec("Too many attempts; see the Retry-After header.", None, 429),
    },
)
