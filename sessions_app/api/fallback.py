"""Django-level errors (bad Host, unknown URL, crash) under /api/ also get the standard error body."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from sessions_app.errors import HttpCode
from sessions_app.realtime import ErrorCode, ProtocolError


def _json_or_default(code: StrEnum, default: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith("/api/"):
            error = ProtocolError(code)
            return JsonResponse(error.to_message().to_dict(), status=error.spec.http_status)
        return default(request, exception) if exception is not None else default(request)

    return view


bad_request = _json_or_default(HttpCode.INVALID_REQUEST, defaults.bad_request)
permission_denied = _json_or_default(HttpCode.PERMISSION_DENIED, defaults.permission_denied)
page_not_found = _json_or_default(HttpCode.NOT_FOUND, defaults.page_not_found)
server_error = _json_or_default(ErrorCode.INTERNAL_ERROR, defaults.server_error)
