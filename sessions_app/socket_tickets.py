"""Single-use tickets: open the session socket without the long-lived token in the URL.

POST /api/auth/ticket/ (the token in the Authorization header) answers a ticket; the socket
then opens with `/ws/session/?ticket=…` once, within WS_TICKET_TTL_S. Query strings end up in
proxy logs and browser history, so a ticket that is used up at once and dies in seconds is
what may appear there. A ticket stands for the token it was issued with: a token revoked or a
device invalidated in the meantime still refuses the handshake.

Only a ticket's SHA-256 is stored: in Redis (on the shard of that digest; GETDEL, so it is redeemed once
across every process), else in process memory (the embedded mode is one process).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from sessions_app.models import AccessToken
from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.redis_clients import RedisShard, ShardedRedis, configured_shards


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_at_ms: int


class TicketStore(Protocol):
    def put(self, key: str, token_pk: int, *, ttl_ms: int) -> None: ...

    def take(self, key: str) -> int | None:
        """The token's pk, at most once per key, and only before the key expires."""


class MemoryTicketStore:
    def __init__(self) -> None:
        self._tickets: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()  # issued in a request thread, redeemed in a database thread

    def put(self, key: str, token_pk: int, *, ttl_ms: int) -> None:
        now = time.monotonic()
        with self._lock:
            for stale in [k for k, (_, expires) in self._tickets.items() if expires <= now]:
                del self._tickets[stale]
            self._tickets[key] = (token_pk, now + ttl_ms / 1000)

    def take(self, key: str) -> int | None:
        with self._lock:
            entry = self._tickets.pop(key, None)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]


class RedisTicketStore:
    """Each ticket on the shard of its digest (docs/redis.md)."""

    def __init__(self, *, url: str | None = None, shards: Sequence[RedisShard] | None = None, prefix: str) -> None:
        self.prefix = prefix
        self._redis = ShardedRedis.of(url=url, shards=shards, timeout=2)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:wsticket:{key}"

    def put(self, key: str, token_pk: int, *, ttl_ms: int) -> None:
        self._redis.sync(self._redis.index(key)).set(self._key(key), token_pk, px=ttl_ms)

    def take(self, key: str) -> int | None:
        value = self._redis.sync(self._redis.index(key)).getdel(self._key(key))
        return None if value is None else int(value)


_stores: dict[tuple[object, ...], TicketStore] = {}
_stores_lock = threading.Lock()


def ticket_store() -> TicketStore:
    config = (configured_shards(), settings.CHANNEL_LAYER_PREFIX)
    with _stores_lock:
        store = _stores.get(config)
        if store is None:
            shards, prefix = config
            store = RedisTicketStore(shards=shards, prefix=str(prefix)) if shards else MemoryTicketStore()
            _stores[config] = store
    return store


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(*, token: AccessToken) -> IssuedTicket:
    """A new ticket for `token`'s user and device."""
    ticket = secrets.token_urlsafe(32)
    ttl_ms = settings.WS_TICKET_TTL_S * 1000
    try:
        ticket_store().put(_digest(ticket), token.pk, ttl_ms=ttl_ms)
    except Exception as error:  # Redis unreachable: say so, as for the database
        raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "could not store the ticket, retry later") from error
    return IssuedTicket(ticket=ticket, expires_at_ms=now_ms() + ttl_ms)


def ticket_redeem(*, ticket: str) -> int | None:
    """The pk of the token the ticket was issued with; None when unknown, used or expired."""
    try:
        return ticket_store().take(_digest(ticket))
    except Exception as error:
        raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "could not check the ticket, retry later") from error
