"""Handshake authentication of the session WebSocket."""

from __future__ import annotations

from urllib.parse import parse_qs

from django.utils import timezone

from sessions_app import selectors, socket_tickets
from sessions_app.errors import SessionCode
from sessions_app.models import AccessToken
from sessions_app.realtime.errors import ProtocolError
from sessions_app.selectors import Credential
from sessions_app.tokens import hash_access_token


def _query(scope: dict) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


def _first(query: dict[str, list[str]], name: str) -> str | None:
    """The first value of a query parameter; None when it is absent or empty."""
    values = query.get(name)
    return (values[0] or None) if values else None


def credentials_from_scope(scope: dict) -> tuple[str | None, str | None]:
    query = _query(scope)
    return _first(query, "token"), _first(query, "deviceId")


def ticket_from_scope(scope: dict) -> str | None:
    return _first(_query(scope), "ticket")


def check_access_token(token: AccessToken | None) -> AccessToken:
    """Validate a looked-up token (HTTP); raises the documented error."""
    if token is None:
        raise ProtocolError(SessionCode.TOKEN_INVALID)
    check_credential(Credential.of(token))
    return token


def check_credential(credential: Credential) -> None:
    """The one judgement of a token, for HTTP and the socket alike."""
    if not credential.user_is_active:
        raise ProtocolError(SessionCode.TOKEN_INVALID)
    # Device invalidation is reported before the token revocation it causes: it is the reason.
    if credential.device_invalidated_at is not None:
        raise ProtocolError(
            SessionCode.DEVICE_INVALIDATED, f"device invalidated: {credential.device_invalidated_reason}"
        )
    if credential.revoked_at is not None:
        raise ProtocolError(SessionCode.TOKEN_REVOKED)
    if credential.expires_at <= timezone.now():
        raise ProtocolError(SessionCode.TOKEN_EXPIRED)


def _require_device(credential: Credential, device_id: str) -> None:
    if credential.device_id != device_id:
        known = selectors.device_by_device_id(device_id) is not None
        raise ProtocolError(SessionCode.DEVICE_MISMATCH if known else SessionCode.DEVICE_UNKNOWN)


def authenticate_websocket_requests(scopes: list[dict]) -> list[Credential | ProtocolError]:
    """Check each handshake's `token` and `deviceId` query parameters and their binding, or, without
    a `token`, redeem a `ticket` (deviceId optional: if given, it must be the ticket's device).
    The tokens of all of them are one query. Each outcome is the credential, or the ProtocolError
    (a 4001 code for token and ticket, 4003 for device) to refuse that handshake with."""
    credentials = [credentials_from_scope(scope) for scope in scopes]
    hashes = [None if raw is None else hash_access_token(raw) for raw, _ in credentials]
    wanted = [key_hash for key_hash in hashes if key_hash is not None]
    found = selectors.credentials_by_hash(wanted) if wanted else {}
    outcomes: list[Credential | ProtocolError] = []
    for scope, key_hash, (_, device_id) in zip(scopes, hashes, credentials, strict=True):
        try:
            if key_hash is None:
                outcomes.append(_authenticate_ticket(ticket_from_scope(scope), device_id))
            else:
                outcomes.append(_authenticate_token(found.get(key_hash), device_id))
        except ProtocolError as error:
            outcomes.append(error)
    return outcomes


def _authenticate_token(credential: Credential | None, device_id: str | None) -> Credential:
    if credential is None:
        raise ProtocolError(SessionCode.TOKEN_INVALID)
    if device_id is None:
        raise ProtocolError(SessionCode.DEVICE_ID_MISSING)
    _require_device(credential, device_id)
    check_credential(credential)
    return credential


def _authenticate_ticket(raw_ticket: str | None, device_id: str | None) -> Credential:
    if raw_ticket is None:
        raise ProtocolError(SessionCode.TOKEN_MISSING)
    # Redeemed first, whatever follows: a ticket presented once is spent.
    token_pk = socket_tickets.ticket_redeem(ticket=raw_ticket)
    token = selectors.access_token_by_pk(token_pk) if token_pk is not None else None
    if token is None:
        raise ProtocolError(SessionCode.TICKET_INVALID)
    credential = Credential.of(token)
    if device_id is not None:
        _require_device(credential, device_id)
    check_credential(credential)
    return credential
