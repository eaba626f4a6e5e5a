"""The production channel layer waits for a pooled connection instead of failing a burst: redis-py's
own pool raises past 100 connections, which a storm of handshakes (three group_add each) exceeds.

Under CI=true an unreachable Redis fails these tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio
from channels_redis.core import RedisChannelLayer
from django.test import override_settings

from sessions_app.realtime import internals
from sessions_app.realtime.redis_layer import RedisLayer
from tests.support.production import REDIS_URL, private_redis_prefix


@pytest.fixture
def prefix() -> Iterator[str]:
    with private_redis_prefix("layer") as prefix:
        yield prefix


async def burst(layer: RedisChannelLayer, count: int) -> list[object]:
    channel = await layer.new_channel()
    results = await asyncio.gather(
        *(layer.group_add(f"burst-{i}", channel) for i in range(count)), return_exceptions=True
    )
    await layer.flush()
    return [r for r in results if isinstance(r, BaseException)]


@pytest.mark.production
@override_settings(CHANNEL_LAYER_POOL_SIZE=5, CHANNEL_LAYER_POOL_TIMEOUT_S=10)
async def test_a_burst_larger_than_the_pool_waits_for_connections_and_all_of_it_succeeds(prefix: str) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    pool = layer.create_pool(0)

    assert isinstance(pool, redis.asyncio.BlockingConnectionPool) and pool.max_connections == 5
    assert await burst(layer, 300) == []


@pytest.mark.production
async def test_stock_channels_redis_fails_the_same_burst_past_redis_pys_hundred_connections(prefix: str) -> None:
    failures = await burst(RedisChannelLayer(hosts=[{"address": REDIS_URL}], prefix=prefix), 300)

    assert failures and all("Too many connections" in str(error) for error in failures)


def test_without_the_guard_the_layer_keeps_channels_redis_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    internals.REDIS_LAYER_POOL.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    try:
        pool = RedisLayer(hosts=[{"address": REDIS_URL}]).create_pool(0)
    finally:
        internals.REDIS_LAYER_POOL.reset()

    assert type(pool) is redis.asyncio.ConnectionPool
