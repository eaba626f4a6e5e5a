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


async def joined(layer: RedisLayer, groups: list[str], channel: str) -> list[tuple[float | None, int]]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [f"{layer.prefix}:group:{group}" for group in groups]
        return [(await client.zscore(key, channel), await client.ttl(key)) for key in keys]
    finally:
        await client.aclose()


@pytest.mark.production
async def test_several_groups_are_joined_together_as_group_add_joins_them(prefix: str) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()
    groups = ["devices.1", "users.7", "sessions.abc"]

    await layer.group_add_many(groups, channel)

    for score, ttl in await joined(layer, groups, channel):
        assert score is not None and 0 < ttl <= layer.group_expiry
    await layer.group_send("users.7", {"type": "hello"})
    assert (await layer.receive(channel))["type"] == "hello"
    await layer.flush()


@pytest.mark.production
async def test_without_its_guard_group_add_many_joins_one_group_at_a_time(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    internals.REDIS_GROUP_JOINS.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()
    try:
        await layer.group_add_many(["a.1", "b.2"], channel)
        found = await joined(layer, ["a.1", "b.2"], channel)
    finally:
        internals.REDIS_GROUP_JOINS.reset()
        await layer.flush()

    assert all(score is not None for score, _ in found)
