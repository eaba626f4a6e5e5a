"""Redis clients of the kernel and the apps (stream buffer, connection limits, tickets), one bounded pool each.

redis-py's default pools open a new connection whenever every open one is busy and never
shrink, so a connect storm left each process holding as many Redis connections as it once had
concurrent commands. A blocking pool of
REDIS_POOL_SIZE connections makes that a fixed, documented number: a command waits up to
`timeout` seconds for a free connection instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings


def sync_redis(url: str, *, timeout: float) -> Any:
    """A client for threads (database threads, on-commit callbacks)."""
    import redis

    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
    )
    return redis.Redis(connection_pool=pool)


def async_redis(url: str, *, timeout: float) -> Any:
    """A client for the current event loop (make one per loop: asyncio clients belong to theirs);
    `LoopRedis` does that."""
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
    )
    return redis.asyncio.Redis(connection_pool=pool)


class LoopRedis:
    """Call it for the running loop's asyncio client: redis.asyncio clients belong to the loop
    they were made on, and a process may run more than one (tests, management commands)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = async_redis(self.url, timeout=self.timeout)
            self._loop = loop
        return self._client
