"""The session app's HTTP operations, for the OpenAPI document (sessions_app.openapi)."""

from sessions_app.errors import HttpCode, SessionCode
from sessions_app.http_messages import (
    DeviceInvalidateRequest,
    DevicePath,
    DeviceView,
    TicketResponse,
    TokenRequest,
    TokenResponse,
)
from sessions_app.openapi import Operation
from sessions_app.realtime.errors import ErrorCode

OPERATIONS = [
    Operation(
        "POST",
        "/api/auth/token/",
        "Log in: a token bound to one device (a device ID is generated when none is given)",
        TokenResponse,
        request=TokenRequest,
        status=201,
        authenticated=False,
        errors=(
            HttpCode.INVALID_CREDENTIALS,
            HttpCode.DEVICE_TAKEN,
            SessionCode.DEVICE_INVALIDATED,
            HttpCode.THROTTLED,
        ),
    ),
    Operation("POST", "/api/auth/token/revoke/", "Revoke the token of this request", None, status=204),
    Operation(
        "POST",
        "/api/auth/ticket/",
        "A single-use ticket for this token's device: open the socket with `?ticket=` within WS_TICKET_TTL_S "
        "(30 s), instead of the token in the URL",
        TicketResponse,
        status=201,
        errors=(HttpCode.THROTTLED, ErrorCode.SERVICE_UNAVAILABLE),
    ),
    Operation("GET", "/api/devices/", "Your devices", DeviceView, many=True),
    Operation(
        "POST",
        "/api/devices/{deviceId}/invalidate/",
        "Invalidate one of your devices (its connections close with 4003)",
        DeviceView,
        request=DeviceInvalidateRequest,
        body_required=False,
        path_parameters=DevicePath,
        errors=(HttpCode.NOT_FOUND,),
    ),
    Operation("GET", "/api/schema/", "This document", None, authenticated=False, media_type="application/json"),
    Operation(
        "GET",
        "/api/asyncapi.json",
        "The WebSocket protocol (/ws/session/) as an AsyncAPI 3.0 document",
        None,
        authenticated=False,
        media_type="application/json",
    ),
    Operation(
        "GET",
        "/api/docs/",
        "This document in a browser (Swagger UI)",
        None,
        authenticated=False,
        media_type="text/html",
    ),
    Operation(
        "GET",
        "/api/docs/socket/",
        "The WebSocket protocol in a browser: every message, its fields, the error and close codes",
        None,
        authenticated=False,
        media_type="text/html",
    ),
]
