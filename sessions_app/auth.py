"""Handshake authentication of the session WebSocket."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from sessions_app import selectors
from sessions_app.errors import ErrorCode, ProtocolError
from sessions_app.models import AccessToken, Device


@dataclass(frozen=True)
class AuthenticatedClient:
    user: AbstractBaseUser
    device: Device
    token: AccessToken


def credentials_from_scope(scope: dict) -> tuple[str | None, str | None]:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = (query.get("token") or [None])[0]
    device_id = (query.get("deviceId") or [None])[0]
    return token or None, device_id or None


def check_access_token(token: AccessToken | None) -> AccessToken:
    """Validate a looked-up token (HTTP and socket alike); raises the documented error."""
    if token is None or not token.user.is_active:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    # Device invalidation is reported before the token revocation it causes: it is the reason.
    if not token.device.is_valid:
        raise ProtocolError(ErrorCode.DEVICE_INVALIDATED, f"device invalidated: {token.device.invalidated_reason}")
    if token.revoked_at is not None:
        raise ProtocolError(ErrorCode.TOKEN_REVOKED)
    if token.expires_at <= timezone.now():
        raise ProtocolError(ErrorCode.TOKEN_EXPIRED)
    return token


def authenticate_websocket_request(scope: dict) -> AuthenticatedClient:
    """Check the `token` and `deviceId` query parameters and their binding.

    Raises ProtocolError with a 4001 code (token) or 4003 code (device).
    """
    raw_token, device_id = credentials_from_scope(scope)
    if raw_token is None:
        raise ProtocolError(ErrorCode.TOKEN_MISSING)
    token = selectors.access_token_by_raw(raw_token)
    if token is None:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    if device_id is None:
        raise ProtocolError(ErrorCode.DEVICE_ID_MISSING)
    if token.device.device_id != device_id:
        known = selectors.device_by_device_id(device_id) is not None
        raise ProtocolError(ErrorCode.DEVICE_MISMATCH if known else ErrorCode.DEVICE_UNKNOWN)
    check_access_token(token)
    return AuthenticatedClient(user=token.user, device=token.device, token=token)
