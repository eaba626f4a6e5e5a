"""Every HTTP error body has the socket's `error` shape (sessions_app.errors.ErrorMessage)."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from sessions_app.errors import HttpCode
from sessions_app.realtime.errors import ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

# Any registered code (the sockets' ErrorCode or an app's), as ProtocolError takes.
_DRF_CODES: list[tuple[type[exceptions.APIException], StrEnum]] = [
    (exceptions.Throttled, HttpCode.THROTTLED),
    (exceptions.NotAuthenticated, HttpCode.AUTHENTICATION_REQUIRED),
    (exceptions.AuthenticationFailed, HttpCode.AUTHENTICATION_REQUIRED),
    (exceptions.PermissionDenied, HttpCode.PERMISSION_DENIED),
    (exceptions.NotFound, HttpCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, HttpCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, HttpCode.NOT_ACCEPTABLE),
    (exceptions.ParseError, HttpCode.INVALID_REQUEST),
    (exceptions.UnsupportedMediaType, HttpCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.ValidationError, HttpCode.INVALID_REQUEST),
]


def error_response(error: ProtocolError, headers: dict[str, str] | None = None) -> Response:
    http_status = error.spec.http_status
    response = Response(error.to_message().to_dict(), status=http_status, headers=headers)
    if http_status == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtocolError):
        return error_response(exc)
    if isinstance(exc, Http404):
        return error_response(ProtocolError(HttpCode.NOT_FOUND))
    if isinstance(exc, DatabaseError):
        # An outage, not a bug: 503 with the standard body, so clients retry instead of giving up.
        logger.error("database unavailable during %s", context.get("request"), exc_info=exc)
        return error_response(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))
    response = exception_handler(exc, context)
    if response is None:
        # A bug: logged with its traceback, and answered with the standard body in development too,
        # where Django would answer with its HTML debug page.
        logger.error("unhandled error during %s", context.get("request"), exc_info=exc)
        return error_response(ProtocolError(ErrorCode.INTERNAL_ERROR))
    code = next((code for cls, code in _DRF_CODES if isinstance(exc, cls)), HttpCode.INVALID_REQUEST)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = detail if isinstance(detail, str) else str(detail)
    headers = {name: value for name, value in response.items() if name in {"Retry-After", "Allow"}}
    return error_response(ProtocolError(code, message), headers=headers)
