"""Handshake authentication of the session WebSocket."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from sessions_app import selectors, tickets
from sessions_app.errors import SessionCode
from sessions_app.models import AccessToken, Device
from sessions_app.realtime import ProtocolError


@dataclass(frozen=True)
class AuthenticatedClient:
    user: AbstractBaseUser
    device: Device
    token: AccessToken


def _query(scope: dict) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


def credentials_from_scope(scope: dict) -> tuple[str | None, str | None]:
    query = _query(scope)
    token = (query.get("token") or [None])[0]
    device_id = (query.get("deviceId") or [None])[0]
    return token or None, device_id or None


def ticket_from_scope(scope: dict) -> str | None:
    return (_query(scope).get("ticket") or [None])[0] or None


def check_access_token(token: AccessToken | None) -> AccessToken:
    """Validate a looked-up token (HTTP and socket alike); raises the documented error."""
    if token is None or not token.user.is_active:
        raise ProtocolError(SessionCode.TOKEN_INVALID)
    # Device invalidation is reported before the token revocation it causes: it is the reason.
    if not token.device.is_valid:
        raise ProtocolError(SessionCode.DEVICE_INVALIDATED, f"device invalidated: {token.device.invalidated_reason}")
    if token.revoked_at is not None:
        raise ProtocolError(SessionCode.TOKEN_REVOKED)
    if token.expires_at <= timezone.now():
        raise ProtocolError(SessionCode.TOKEN_EXPIRED)
    return token


def _require_device(token: AccessToken, device_id: str) -> None:
    if token.device.device_id != device_id:
        known = selectors.device_by_device_id(device_id) is not None
        raise ProtocolError(SessionCode.DEVICE_MISMATCH if known else SessionCode.DEVICE_UNKNOWN)


def authenticate_websocket_request(scope: dict) -> AuthenticatedClient:
    """Check the `token` and `deviceId` query parameters and their binding, or, without a
    `token`, redeem a `ticket` (deviceId optional: if given, it must be the ticket's device).

    Raises ProtocolError with a 4001 code (token, ticket) or 4003 code (device).
    """
    raw_token, device_id = credentials_from_scope(scope)
    if raw_token is None:
        raw_ticket = ticket_from_scope(scope)
        if raw_ticket is None:
            raise ProtocolError(SessionCode.TOKEN_MISSING)
        return _authenticate_ticket(raw_ticket, device_id)
    token = selectors.access_token_by_raw(raw_token)
    if token is None:
        raise ProtocolError(SessionCode.TOKEN_INVALID)
    if device_id is None:
        raise ProtocolError(SessionCode.DEVICE_ID_MISSING)
    _require_device(token, device_id)
    check_access_token(token)
    return AuthenticatedClient(user=token.user, device=token.device, token=token)


def _authenticate_ticket(raw_ticket: str, device_id: str | None) -> AuthenticatedClient:
    # Redeemed first, whatever follows: a ticket presented once is spent.
    token_pk = tickets.ticket_redeem(ticket=raw_ticket)
    token = selectors.access_token_by_pk(token_pk) if token_pk is not None else None
    if token is None:
        raise ProtocolError(SessionCode.TICKET_INVALID)
    if device_id is not None:
        _require_device(token, device_id)
    check_access_token(token)
    return AuthenticatedClient(user=token.user, device=token.device, token=token)
