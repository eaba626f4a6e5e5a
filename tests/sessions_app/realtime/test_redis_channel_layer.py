"""The production channel layer waits for a pooled connection instead of failing a burst: redis-py's
own pool raises past 100 connections, which a storm of handshakes (three group_add each) exceeds.

Under CI=true an unreachable Redis fails these tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio
import redis.exceptions
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


@pytest.mark.production
async def test_a_group_trip_runs_its_commands_around_the_joins_and_leaves_in_order(prefix: str) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()
    await layer.group_add_many(["old.1"], channel)
    count = ("ZCARD", f"{prefix}:group:new.1")

    replies = await layer.group_trip(channel, add=["new.1"], discard=["old.1"], before=[count], after=[count])

    assert replies == [0, 1]
    assert [score is not None for score, _ in await joined(layer, ["new.1", "old.1"], channel)] == [True, False]
    await layer.flush()


@pytest.mark.production
async def test_a_command_that_fails_in_a_group_trip_is_answered_in_its_place_and_the_joins_still_hold(
    prefix: str,
) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()

    replies = await layer.group_trip(channel, add=["a.1"], after=[("NOSUCHCOMMAND",)])

    assert replies is not None and isinstance(replies[0], redis.exceptions.ResponseError)
    assert (await joined(layer, ["a.1"], channel))[0][0] is not None
    await layer.flush()


@pytest.mark.production
async def test_group_discard_many_leaves_every_group_it_names(prefix: str) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()
    await layer.group_add_many(["a.1", "b.2", "c.3"], channel)

    await layer.group_discard_many(["a.1", "b.2"], channel)

    assert [score is not None for score, _ in await joined(layer, ["a.1", "b.2", "c.3"], channel)] == [
        False,
        False,
        True,
    ]
    await layer.flush()


def test_the_layer_shares_its_trips_only_with_keys_on_its_single_redis() -> None:
    assert RedisLayer(hosts=[{"address": REDIS_URL}]).shares(REDIS_URL)
    assert not RedisLayer(hosts=[{"address": REDIS_URL}]).shares("redis://10.0.0.9:6379/0")
    assert not RedisLayer(hosts=[{"address": REDIS_URL}]).shares(None)
    assert not RedisLayer(hosts=[{"address": REDIS_URL}, {"address": "redis://10.0.0.9:6379/0"}]).shares(REDIS_URL)


@pytest.mark.production
async def test_without_its_guard_a_group_trip_does_nothing_and_says_so(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    internals.REDIS_GROUP_JOINS.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channel = await layer.new_channel()
    try:
        replies = await layer.group_trip(channel, add=["a.1"])
        shares = layer.shares(REDIS_URL)
        found = await joined(layer, ["a.1"], channel)
    finally:
        internals.REDIS_GROUP_JOINS.reset()
        await layer.flush()

    assert replies is None and not shares and found[0][0] is None


@pytest.mark.production
async def test_group_trips_asked_for_together_share_round_trips_and_each_gets_its_own_replies(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    channels = [await layer.new_channel() for _ in range(50)]
    pipelines = []
    real = internals.redis_group_trips

    async def counted(layer: RedisLayer, index: int, trips: list[internals.GroupTrip]) -> object:
        pipelines.append(len(trips))
        return await real(layer, index, trips)

    monkeypatch.setattr(internals, "redis_group_trips", counted)

    replies = await asyncio.gather(
        *(
            layer.group_trip(channel, add=[f"g.{i}"], after=[("ZCARD", f"{prefix}:group:g.{i}")])
            for i, channel in enumerate(channels)
        )
    )

    assert replies == [[1]] * 50
    assert sum(pipelines) == 50 and len(pipelines) < 50
    await layer.flush()


@pytest.mark.production
async def test_a_join_that_fails_in_a_shared_round_trip_fails_only_its_own_caller(prefix: str) -> None:
    layer = RedisLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    one, other = await layer.new_channel(), await layer.new_channel()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.set(f"{prefix}:group:broken.1", "not a sorted set")
    await client.aclose()

    outcomes = await asyncio.gather(
        layer.group_trip(one, add=["broken.1"]), layer.group_trip(other, add=["fine.1"]), return_exceptions=True
    )

    assert isinstance(outcomes[0], redis.exceptions.ResponseError) and outcomes[1] == []
    assert (await joined(layer, ["fine.1"], other))[0][0] is not None
    await layer.flush()
