from __future__ import annotations

from django.contrib.auth import authenticate
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from sessions_app import selectors, services, socket_tickets
from sessions_app.api.authentication import access_token_of, user_id_of
from sessions_app.api.parsing import parse_body, parse_path
from sessions_app.errors import HttpCode
from sessions_app.http_messages import (
    DeviceInvalidateRequest,
    DevicePath,
    DeviceView,
    TicketResponse,
    TokenRequest,
    TokenResponse,
)
from sessions_app.models import Device
from sessions_app.openapi import openapi
from sessions_app.realtime.errors import ProtocolError, is_unicode
from sessions_app.realtime.export import PROTOCOL_VERSION, asyncapi
from sessions_app.realtime.message_base import epoch_ms, optional_epoch_ms


class LoginIpThrottle(AnonRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    """Slows down password guessing against one account from many addresses."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        # A lone surrogate has no UTF-8 form for the cache's key; the body's validation refuses it.
        if not isinstance(username, str) or not username or not is_unicode(username):
            return None
        return self.cache_format % {"scope": self.scope, "ident": username.lower()[:150]}


class TokenObtainView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginIpThrottle, LoginUsernameThrottle]

    def post(self, request: Request) -> Response:
        body = parse_body(TokenRequest, request)
        user = authenticate(request._request, username=body.username, password=body.password)
        if user is None or not user.is_active:
            raise ProtocolError(HttpCode.INVALID_CREDENTIALS)
        issued = services.token_issue(user=user, device_id=body.deviceId)
        response = TokenResponse(
            token=issued.token, deviceId=issued.device.device_id, expiresAt=epoch_ms(issued.expires_at)
        )
        return Response(response.model_dump(), status=201, headers={"Cache-Control": "no-store"})


class TicketThrottle(UserRateThrottle):
    """Per user: tickets are cheap to ask for, and each one is a way in for 30 s."""

    scope = "ticket"


class TicketObtainView(APIView):
    throttle_classes = [TicketThrottle]

    def post(self, request: Request) -> Response:
        token = access_token_of(request)
        issued = socket_tickets.ticket_issue(token=token)
        response = TicketResponse(ticket=issued.ticket, deviceId=token.device.device_id, expiresAt=issued.expires_at_ms)
        return Response(response.model_dump(), status=201, headers={"Cache-Control": "no-store"})


class TokenRevokeView(APIView):
    def post(self, request: Request) -> Response:
        services.token_revoke(token=access_token_of(request))
        return Response(status=204)


def _device_view(device: Device) -> dict:
    return DeviceView(
        deviceId=device.device_id,
        createdAt=epoch_ms(device.created_at),
        lastSeenAt=optional_epoch_ms(device.last_seen_at),
        valid=device.is_valid,
        invalidatedAt=optional_epoch_ms(device.invalidated_at),
        invalidatedReason=device.invalidated_reason,
    ).model_dump()


class DeviceListView(APIView):
    def get(self, request: Request) -> Response:
        return Response([_device_view(device) for device in selectors.devices_of_user(user_id_of(request))])


class DeviceInvalidateView(APIView):
    def post(self, request: Request, device_id: str) -> Response:
        path = parse_path(DevicePath, deviceId=device_id)
        body = parse_body(DeviceInvalidateRequest, request)
        device = selectors.devices_of_user(user_id_of(request)).filter(device_id=path.deviceId).first()
        if device is None:
            raise ProtocolError(HttpCode.NOT_FOUND, "no such device among yours")
        device = services.device_invalidate(device=device, reason=body.reason or "invalidated by the user")
        return Response(_device_view(device))


class OpenApiView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(openapi(PROTOCOL_VERSION))


class AsyncApiView(APIView):
    """The WebSocket protocol, generated from the registries like docs/protocol/asyncapi.json."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(asyncapi())
