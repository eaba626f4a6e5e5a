"""Limits on concurrent WebSocket connections: per user and per client address.

A connection takes a slot at the handshake (after authentication, before its session is
attached) and gives it back when it closes. Over WS_MAX_CONNECTIONS_PER_USER or
WS_MAX_CONNECTIONS_PER_IP (0 = unlimited) the handshake is refused with
`too_many_connections` and close 4030.

A device's own older connections do not count against it: a new connection of a device
replaces the old one (which closes with 4009), so a client reconnecting after a network
drop, before the server noticed the drop, is never locked out by its own dead socket.

With Redis the counts are cluster-wide: a sorted set per user and per address in Redis (each on
the shard of its own name, docs/redis.md),
member `<device pk>:<connection id>`, score the entry's expiry (Redis's clock). Each process
re-stamps the entries of its live connections every PRESENCE_FLUSH_INTERVAL_S (from the
maintenance loop in sessions_app.realtime.live), and an entry lives three intervals, so a process killed
with SIGKILL stops counting within half a minute. When Redis is unreachable the limiter fails
open (the connection is let in, a warning is logged, session_connection_limit_failures_total
counts it): a limit is not worth locking every user out. Without REDIS_URL (the embedded mode,
one process) the counts live in process memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

from sessions_app.realtime import metrics
from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.redis_clients import RedisShard, ShardedRedis, configured_shards

logger = logging.getLogger(__name__)

# One warning per this many seconds while Redis is unreachable (every handshake would log one).
WARNING_INTERVAL_S = 10.0
REFRESH_BATCH = 500


@dataclass(frozen=True)
class Slot:
    """What one connection holds: its entry in its user's and its address's counts."""

    user_id: int
    device_pk: int
    ip: str | None
    connection_id: str

    @property
    def member(self) -> str:
        return f"{self.device_pk}:{self.connection_id}"

    @property
    def device_prefix(self) -> str:
        return f"{self.device_pk}:"


@dataclass(frozen=True)
class _Limit:
    key: str
    limit: int
    setting: str
    what: str


def _limits(slot: Slot, *, per_user: int, per_ip: int) -> list[_Limit]:
    limits = []
    if per_user > 0:
        limits.append(_Limit(f"user:{slot.user_id}", per_user, "WS_MAX_CONNECTIONS_PER_USER", "this user"))
    if per_ip > 0 and slot.ip:
        limits.append(_Limit(f"ip:{slot.ip}", per_ip, "WS_MAX_CONNECTIONS_PER_IP", "this client address"))
    return limits


def _refusal(limit: _Limit) -> ProtocolError:
    return ProtocolError(
        ErrorCode.TOO_MANY_CONNECTIONS, f"{limit.what} already has {limit.limit} connections open ({limit.setting})"
    )


class ConnectionLimiter(Protocol):
    per_user: int
    per_ip: int

    async def acquire(self, slot: Slot) -> None:
        """Count the connection, or raise ProtocolError(too_many_connections)."""

    async def release(self, slot: Slot) -> None: ...

    async def refresh(self) -> None:
        """Keep this process's connections counted (Redis entries expire unless re-stamped)."""


class MemoryConnectionLimiter:
    """The embedded mode: one process, so the counts are two dictionaries (used on the event loop only)."""

    def __init__(self, *, per_user: int, per_ip: int) -> None:
        self.per_user = per_user
        self.per_ip = per_ip
        self._members: dict[str, set[str]] = {}

    def count(self, key: str, *, excluding_prefix: str = "") -> int:
        members = self._members.get(key, ())
        return sum(1 for m in members if not (excluding_prefix and m.startswith(excluding_prefix)))

    async def acquire(self, slot: Slot) -> None:
        limits = _limits(slot, per_user=self.per_user, per_ip=self.per_ip)
        for limit in limits:
            # The device's own older connection only matters at the limit: skip the scan below it
            # (one address can hold many connections, and a storm would scan them all each time).
            if len(self._members.get(limit.key, ())) < limit.limit:
                continue
            if self.count(limit.key, excluding_prefix=slot.device_prefix) >= limit.limit:
                raise _refusal(limit)
        for limit in limits:
            self._members.setdefault(limit.key, set()).add(slot.member)

    async def release(self, slot: Slot) -> None:
        for limit in _limits(slot, per_user=self.per_user, per_ip=self.per_ip):
            members = self._members.get(limit.key)
            if members is not None:
                members.discard(slot.member)
                if not members:
                    del self._members[limit.key]

    async def refresh(self) -> None:
        return None


# KEYS: the sets to check. ARGV: member, the device's prefix, entry lifetime (ms), then one limit per key.
# Returns 0 when the member was added, else the 1-based index of the key that is full.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local limit = tonumber(ARGV[3 + i])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if string.sub(m, 1, #prefix) == prefix then count = count - 1 end
    end
    if count >= limit then return i end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, member)
  redis.call('PEXPIRE', key, ttl)
end
return 0
"""

# KEYS: sets; ARGV: entry lifetime (ms), then the member to re-stamp in each key.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""


class RedisConnectionLimiter:
    """Cluster-wide counts in Redis (see the module's docstring). Fails open when Redis is unreachable."""

    def __init__(
        self,
        *,
        url: str | None = None,
        shards: Sequence[RedisShard] | None = None,
        prefix: str,
        per_user: int,
        per_ip: int,
        ttl_ms: int,
    ) -> None:
        # Short timeouts: a handshake should not wait long on a Redis that is not answering.
        self.redis = ShardedRedis.of(url=url, shards=shards, timeout=2)
        self.prefix = prefix
        self.per_user = per_user
        self.per_ip = per_ip
        self.ttl_ms = ttl_ms
        # This process's slots, re-stamped by refresh() (also those let in while Redis was down).
        self._held: dict[str, Slot] = {}
        self._last_warning = 0.0

    def key(self, name: str) -> str:
        return f"{self.prefix}:wsconn:{name}"

    def _failed_open(self, operation: str, error: Exception) -> None:
        metrics.CONNECTION_LIMIT_FAILURES.labels(operation).inc()
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_S:
            self._last_warning = now
            logger.warning("connection limits unavailable (%s failed, letting connections in): %r", operation, error)

    def _by_shard(self, limits: list[_Limit]) -> dict[int, list[_Limit]]:
        """Each count lives on the shard of its own name (a user's on the user's, an address's on
        the address's), so the two counts of one connection may be on two shards."""
        by_shard: dict[int, list[_Limit]] = {}
        for limit in limits:
            by_shard.setdefault(self.redis.index(limit.key), []).append(limit)
        return by_shard

    async def acquire(self, slot: Slot) -> None:
        limits = _limits(slot, per_user=self.per_user, per_ip=self.per_ip)
        if not limits:
            return
        taken: list[tuple[int, list[_Limit]]] = []
        try:
            for index, shard_limits in self._by_shard(limits).items():
                full = await self.redis.aio(index).eval(
                    _ACQUIRE,
                    len(shard_limits),
                    *(self.key(limit.key) for limit in shard_limits),
                    slot.member,
                    slot.device_prefix,
                    self.ttl_ms,
                    *(limit.limit for limit in shard_limits),
                )
                if full:
                    # Counted on one shard, full on the next: give the first back (not atomic
                    # across shards: a concurrent handshake may see it counted for a moment).
                    await self._remove_from(taken, slot)
                    raise _refusal(shard_limits[int(full) - 1])
                taken.append((index, shard_limits))
        except ProtocolError:
            raise
        except Exception as error:  # redis errors, timeouts, refused connections: all fail open
            self._failed_open("acquire", error)
            self._held[slot.member] = slot  # counted by the next refresh once Redis is back
            return
        self._held[slot.member] = slot

    async def _remove_from(self, taken: list[tuple[int, list[_Limit]]], slot: Slot) -> None:
        for index, shard_limits in taken:
            for limit in shard_limits:
                await self.redis.aio(index).zrem(self.key(limit.key), slot.member)

    async def release(self, slot: Slot) -> None:
        if self._held.pop(slot.member, None) is None:
            return
        await self._remove([slot])

    def _pairs_by_shard(self, slots: list[Slot]) -> dict[int, list[tuple[str, str]]]:
        by_shard: dict[int, list[tuple[str, str]]] = {}
        for slot in slots:
            for limit in _limits(slot, per_user=self.per_user, per_ip=self.per_ip):
                by_shard.setdefault(self.redis.index(limit.key), []).append((self.key(limit.key), slot.member))
        return by_shard

    async def _remove(self, slots: list[Slot]) -> None:
        try:
            for index, pairs in self._pairs_by_shard(slots).items():
                async with self.redis.aio(index).pipeline(transaction=False) as pipe:
                    for key, member in pairs:
                        pipe.zrem(key, member)
                    await pipe.execute()
        except Exception as error:  # the entries expire by themselves
            self._failed_open("release", error)

    async def refresh(self) -> None:
        held = list(self._held.values())
        for start in range(0, len(held), REFRESH_BATCH):
            batch = held[start : start + REFRESH_BATCH]
            try:
                for index, pairs in self._pairs_by_shard(batch).items():
                    await self.redis.aio(index).eval(
                        _REFRESH, len(pairs), *(key for key, _ in pairs), self.ttl_ms, *(m for _, m in pairs)
                    )
            except Exception as error:
                self._failed_open("refresh", error)
                return
            # A connection that closed while the refresh was on its way may have been stamped
            # again after its release: remove it once more.
            closed = [slot for slot in batch if slot.member not in self._held]
            if closed:
                await self._remove(closed)


_limiters: dict[tuple[object, ...], ConnectionLimiter] = {}
_limiters_lock = threading.Lock()


def connection_limiter() -> ConnectionLimiter:
    """This process's limiter for the current settings (Redis with REDIS_URL, else memory)."""
    config = (
        configured_shards(),
        settings.CHANNEL_LAYER_PREFIX,
        settings.WS_MAX_CONNECTIONS_PER_USER,
        settings.WS_MAX_CONNECTIONS_PER_IP,
        settings.PRESENCE_FLUSH_INTERVAL_S,
    )
    limiter = _limiters.get(config)
    if limiter is None:
        with _limiters_lock:
            limiter = _limiters.get(config)
            if limiter is None:
                limiter = _limiters[config] = _build(config)
    return limiter


def _build(config: tuple[Any, ...]) -> ConnectionLimiter:
    shards, prefix, per_user, per_ip, flush_interval_s = config
    if shards:
        return RedisConnectionLimiter(
            shards=shards, prefix=prefix, per_user=per_user, per_ip=per_ip, ttl_ms=3 * flush_interval_s * 1000
        )
    return MemoryConnectionLimiter(per_user=per_user, per_ip=per_ip)


def client_address(scope: dict) -> str | None:
    """The client's IP: daphne puts the X-Forwarded-For address here when run with --proxy-headers."""
    client = scope.get("client")
    return str(client[0]) if client else None


async def connection_acquire(*, user_id: int, device_pk: int, ip: str | None, connection_id: str) -> Slot:
    """Count a new connection; raises ProtocolError(too_many_connections) over a limit."""
    slot = Slot(user_id=user_id, device_pk=device_pk, ip=ip, connection_id=connection_id)
    await connection_limiter().acquire(slot)
    return slot


async def connection_release(*, slot: Slot | None) -> None:
    if slot is not None:
        await connection_limiter().release(slot)


async def connections_refresh() -> None:
    await connection_limiter().refresh()
