"""Under /api/ every answer is JSON, errors too: an unknown URL (in development as in production:
a route of its own, where Django's DEBUG page would otherwise answer), a method a plain page does
not take, a bad Host, a crash. Each gets the standard error body."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from sessions_app.errors import HttpCode
from sessions_app.realtime.errors import ErrorCode, ProtocolError

SAFE_METHODS = ("GET", "HEAD")
NOT_FOUND_ROUTE = "api-not-found"  # the URL name of the route that answers the rest of /api/


def json_error(error: ProtocolError, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error.to_message().to_dict(), status=error.spec.http_status, headers=headers)


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Every URL under /api/ that no route matches, whatever the method."""
    return json_error(ProtocolError(HttpCode.NOT_FOUND, "no such URL"))


def read_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """A page that answers GET and HEAD; any other method gets the JSON 405 (with no CSRF check first,
    whose refusal would be an HTML 403)."""

    @csrf_exempt
    @wraps(view)
    def page(request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            error = ProtocolError(HttpCode.METHOD_NOT_ALLOWED, f'method "{request.method}" not allowed')
            return json_error(error, headers={"Allow": ", ".join(SAFE_METHODS)})
        return view(request)

    return page


def _json_or_default(code: StrEnum, default: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith("/api/"):
            return json_error(ProtocolError(code))
        return default(request, exception) if exception is not None else default(request)

    return view


bad_request = _json_or_default(HttpCode.INVALID_REQUEST, defaults.bad_request)
permission_denied = _json_or_default(HttpCode.PERMISSION_DENIED, defaults.permission_denied)
page_not_found = _json_or_default(HttpCode.NOT_FOUND, defaults.page_not_found)
server_error = _json_or_default(ErrorCode.INTERNAL_ERROR, defaults.server_error)
