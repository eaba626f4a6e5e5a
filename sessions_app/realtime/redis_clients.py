"""Redis clients of the service (stream buffer, connection limits, tickets), one bounded pool each.

redis-py's default pools open a new connection whenever every open one is busy and never
shrink, so a connect storm left each process holding as many Redis connections as it once had
concurrent commands. A blocking pool of
REDIS_POOL_SIZE connections makes that a fixed, documented number: a command waits up to
`timeout` seconds for a free connection instead.

The Redis servers are REDIS_SHARDS (config/env.py `env_redis_shards`): one or more shards, each a
URL or a master that Sentinels watch. A store places each key by its owner (a session, a user, an
address, a ticket) with `shard_index`, so one owner's keys are on one shard and every process
agrees where (docs/redis.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


@dataclass(frozen=True)
class RedisShard:
    """One shard: a server by URL, or the master named `master_name` that `sentinels` watch."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    db: int = 0

    @classmethod
    def from_setting(cls, entry: Mapping[str, Any]) -> RedisShard:
        if entry.get("url"):
            return cls(url=str(entry["url"]))
        return cls(
            sentinels=tuple((str(host), int(port)) for host, port in entry["sentinels"]),
            master_name=str(entry["master_name"]),
            password=entry.get("password"),
            sentinel_password=entry.get("sentinel_password"),
            db=int(entry.get("db") or 0),
        )

    @property
    def sentinel_managed(self) -> bool:
        return self.master_name is not None


def configured_shards() -> tuple[RedisShard, ...]:
    """The shards of the settings (REDIS_SHARDS); () in the embedded mode."""
    return tuple(RedisShard.from_setting(entry) for entry in getattr(settings, "REDIS_SHARDS", ()))


def shard_index(owner: str, count: int) -> int:
    """The shard of `owner`'s keys among `count`: a jump consistent hash (Lamping and Veach) of
    its BLAKE2 digest, the same in every process; adding a shard moves only 1/count of the owners."""
    if count <= 1:
        return 0
    key = int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big")
    bucket, jump = -1, 0
    while jump < count:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


def _pool_options(timeout: float) -> dict[str, Any]:
    return {
        "max_connections": settings.REDIS_POOL_SIZE,
        "timeout": timeout,
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 2.0),
    }


def _sentinel_pool_class(base: Any, blocking: Any) -> Any:
    """redis-py's Sentinel pool (master discovery, reconnect after a failover) that waits for a
    free connection like BlockingConnectionPool instead of raising past its size."""
    return type(f"Waiting{base.__name__}", (base, blocking), {})


def sync_redis(url: str, *, timeout: float) -> Any:
    """A client for threads (database threads, on-commit callbacks)."""
    return sync_redis_for(RedisShard(url=url), timeout=timeout)


def sync_redis_for(shard: RedisShard, *, timeout: float) -> Any:
    import redis
    import redis.sentinel

    if shard.url is not None:
        pool = redis.BlockingConnectionPool.from_url(shard.url, **_pool_options(timeout))
        return redis.Redis(connection_pool=pool)
    sentinel = redis.sentinel.Sentinel(
        list(shard.sentinels),
        sentinel_kwargs={"password": shard.sentinel_password, "socket_timeout": min(timeout, 2.0)},
        socket_connect_timeout=min(timeout, 2.0),
    )
    pool_class = _sentinel_pool_class(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool)
    return sentinel.master_for(
        str(shard.master_name),
        connection_pool_class=pool_class,
        password=shard.password,
        db=shard.db,
        **_pool_options(timeout),
    )


def async_redis_for(shard: RedisShard, *, timeout: float) -> Any:
    """A client for the current event loop (make one per loop: asyncio clients belong to theirs);
    `LoopRedis` does that."""
    import redis.asyncio
    import redis.asyncio.sentinel

    if shard.url is not None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(shard.url, **_pool_options(timeout))
        return redis.asyncio.Redis(connection_pool=pool)
    sentinel = redis.asyncio.sentinel.Sentinel(
        list(shard.sentinels),
        sentinel_kwargs={"password": shard.sentinel_password, "socket_timeout": min(timeout, 2.0)},
        socket_connect_timeout=min(timeout, 2.0),
    )
    pool_class = _sentinel_pool_class(
        redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
    )
    return sentinel.master_for(
        str(shard.master_name),
        connection_pool_class=pool_class,
        password=shard.password,
        db=shard.db,
        **_pool_options(timeout),
    )


class LoopRedis:
    """Call it for the running loop's asyncio client: redis.asyncio clients belong to the loop
    they were made on, and a process may run more than one (tests, management commands)."""

    def __init__(self, url: str | RedisShard, *, timeout: float) -> None:
        self.shard = url if isinstance(url, RedisShard) else RedisShard(url=url)
        self.timeout = timeout
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str | None:
        return self.shard.url

    def __call__(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = async_redis_for(self.shard, timeout=self.timeout)
            self._loop = loop
        return self._client


class ShardedRedis:
    """A client per shard (for threads and for the running loop), and where an owner's keys live."""

    def __init__(self, shards: Sequence[RedisShard], *, timeout: float) -> None:
        if not shards:
            raise ValueError("ShardedRedis needs at least one shard")
        self.shards = tuple(shards)
        self.timeout = timeout
        self._sync: dict[int, Any] = {}
        self._async = [LoopRedis(shard, timeout=timeout) for shard in self.shards]

    @classmethod
    def of(cls, *, url: str | None, shards: Sequence[RedisShard] | None, timeout: float) -> ShardedRedis:
        """From a single URL (the stores' original signature) or a list of shards."""
        if shards:
            return cls(shards, timeout=timeout)
        if url:
            return cls([RedisShard(url=url)], timeout=timeout)
        raise ValueError("a Redis store needs a url or shards")

    def __len__(self) -> int:
        return len(self.shards)

    def index(self, owner: str) -> int:
        return shard_index(owner, len(self.shards))

    def sync(self, index: int) -> Any:
        client = self._sync.get(index)
        if client is None:
            client = self._sync.setdefault(index, sync_redis_for(self.shards[index], timeout=self.timeout))
        return client

    def aio(self, index: int) -> Any:
        return self._async[index]()

    def loop_client(self, index: int) -> LoopRedis:
        """The LoopRedis behind `aio(index)`."""
        return self._async[index]

    def group(self, owners: Sequence[str]) -> dict[int, list[str]]:
        """`owners` by shard index, each shard's in the order given."""
        by_shard: dict[int, list[str]] = {}
        for owner in owners:
            by_shard.setdefault(self.index(owner), []).append(owner)
        return by_shard


# --- Django's cache on a Sentinel-managed shard -------------------------------------------------
# Django's RedisCache builds its pools from URLs; this one asks the Sentinels for the master
# (CACHES in config/settings.py picks it when the first shard is Sentinel-managed).


class SentinelRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: Any, *, shard: Mapping[str, Any], **options: Any) -> None:
        super().__init__(servers, **options)
        self._shard = RedisShard.from_setting(shard)
        self._master: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        if self._master is None:
            self._master = sync_redis_for(self._shard, timeout=2)
        return self._master


class SentinelRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SentinelRedisCacheClient
