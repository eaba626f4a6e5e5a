"""Secrets: access tokens (stored as SHA-256) and session tokens (an HMAC, stored nowhere)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from django.utils.crypto import salted_hmac

_SESSION_TOKEN_SALT = "sessions_app.session_token"


def new_access_token() -> str:
    return secrets.token_urlsafe(32)


def hash_access_token(raw: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


def new_session_nonce() -> str:
    return secrets.token_hex(16)


def session_token_for(session_id: uuid.UUID, nonce: str) -> str:
    mac = salted_hmac(_SESSION_TOKEN_SALT, f"{session_id}:{nonce}", algorithm="sha256").hexdigest()
    return f"{session_id.hex}.{mac}"


def session_id_from_token(token: str) -> uuid.UUID | None:
    head, _, mac = token.partition(".")
    if not mac:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def session_token_matches(token: str, session_id: uuid.UUID, nonce: str) -> bool:
    return hmac.compare_digest(token, session_token_for(session_id, nonce))
