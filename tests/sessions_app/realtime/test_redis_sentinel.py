"""Redis through Sentinel: the stores and the channel layer find the master, and find the new one
after a failover; a session stream's epoch changes with the master's replication history, so a
failover costs its clients a resync, never a rewound number (docs/redis.md). A master, a replica
and three Sentinels of the tests' own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis
from django.core.cache.backends.base import BaseCache

from config.env import cache_for
from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.limits import RedisConnectionLimiter, Slot
from sessions_app.realtime.redis_clients import RedisShard, SentinelRedisCache
from sessions_app.realtime.redis_layer import RedisPubSubLayer
from sessions_app.realtime.session_stream import RedisStreamStore, StreamHead
from sessions_app.socket_tickets import RedisTicketStore
from tests.support.redis_servers import MASTER_NAME, SentinelGroup, sentinel_group

pytestmark = [pytest.mark.production]

T = TypeVar("T")
_ids = itertools.count(1)


@pytest.fixture
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with sentinel_group(tmp_path_factory.mktemp("sentinel")) as group:
        yield group


def shard_of(group: SentinelGroup) -> RedisShard:
    return RedisShard(sentinels=tuple(("127.0.0.1", s.port) for s in group.sentinels), master_name=MASTER_NAME)


def setting_of(group: SentinelGroup) -> dict:
    return {
        "sentinels": [("127.0.0.1", s.port) for s in group.sentinels],
        "master_name": MASTER_NAME,
        "password": None,
        "sentinel_password": None,
        "db": 0,
    }


async def eventually(call: Callable[[], Awaitable[T]], timeout: float = 20) -> T:
    """`call`'s result once it stops failing: right after a failover the first calls may meet the
    demoted master (READONLY) or a closed connection, as a store's callers would."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_session_stream_changes_epoch_when_its_master_fails_over(group: SentinelGroup) -> None:
    store = RedisStreamStore(shards=[shard_of(group)], prefix=f"sentinel-{next(_ids)}", max_messages=10, ttl_s=60)
    before = store.append(["s1"], '{"type":"x"}')["s1"]
    store.append(["s1"], '{"type":"y"}')
    replid = redis.Redis(port=group.master_port()).info("replication")["master_replid"]
    assert before.epoch.endswith("." + replid[:12])
    assert await store.head("s1") == StreamHead(before.epoch, 2)
    group.failover()

    after = await eventually(lambda: store.head("s1"))
    # Nothing was lost here (the replica had synced), yet the epoch is new: the store cannot tell
    # a complete copy from one missing the last pushes, so every stream of the shard starts afresh.
    assert after.epoch != before.epoch and after.epoch.split(".")[0] == before.epoch.split(".")[0]
    assert after.seq == 2
    replay = await store.read_after("s1", 0)
    assert replay is not None and replay.epoch == after.epoch

    async def append() -> StreamHead:
        return store.append(["s1"], '{"type":"z"}')["s1"]

    assert await eventually(append) == StreamHead(after.epoch, 3)
    assert (await store.heads(["s1"]))["s1"] == StreamHead(after.epoch, 3)


async def test_limits_tickets_and_the_cache_follow_the_master_through_a_failover(group: SentinelGroup) -> None:
    prefix = f"sentinel-{next(_ids)}"
    limiter = RedisConnectionLimiter(shards=[shard_of(group)], prefix=prefix, per_user=1, per_ip=0, ttl_ms=30_000)
    tickets = RedisTicketStore(shards=[shard_of(group)], prefix=prefix)
    cache: BaseCache = SentinelRedisCache(MASTER_NAME, cache_for(setting_of(group), key_prefix=prefix))
    first = Slot(user_id=7, device_pk=1, ip=None, connection_id="a")
    await limiter.acquire(first)
    tickets.put("digest", 42, ttl_ms=30_000)
    cache.set("throttle", 3)
    group.failover()

    async def redeem() -> int | None:
        return tickets.take("digest")

    assert await eventually(redeem) == 42
    assert cache.get("throttle") == 3
    # The limiter fails open while it meets the demoted master: wait until its client writes again.
    await eventually(lambda: limiter.redis.aio(0).set(f"{prefix}:probe", 1))
    second = Slot(user_id=7, device_pk=2, ip=None, connection_id="b")
    with pytest.raises(ProtocolError) as refused:  # the user's count came across
        await limiter.acquire(second)
    assert refused.value.code == ErrorCode.TOO_MANY_CONNECTIONS
    await limiter.release(first)
    await limiter.acquire(second)


async def test_the_channel_layer_delivers_group_messages_again_after_a_failover(group: SentinelGroup) -> None:
    layer = RedisPubSubLayer(shards=[setting_of(group)], prefix=f"sentinel-layer-{next(_ids)}", timeout=6)
    channel = await layer.new_channel()
    try:
        await layer.group_add("prices", channel)
        await heard_once(layer, channel, {"type": "before"})
        await asyncio.to_thread(group.failover)  # the layer's own tasks go on meanwhile
        # The subscription is made again on the new master once the layer reconnects (or the old
        # master, now a replica, hears what the new one publishes): on a loaded machine, a while.
        await heard_once(layer, channel, {"type": "after"}, timeout=90)
    finally:
        await eventually(layer.flush)


async def heard_once(layer: RedisPubSubLayer, channel: str, message: dict, timeout: float = 10) -> None:
    """Send to the group until the channel hears `message` (pub/sub delivers only to the
    subscribers Redis already has; a failing send is retried like a client would)."""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"{message} never heard"
        with contextlib.suppress(redis.RedisError):
            await layer.group_send("prices", message)
        try:
            got = await asyncio.wait_for(layer.receive(channel), 0.5)
        except TimeoutError:
            continue
        assert got == message
        return


async def test_no_stream_position_is_handed_out_twice_across_a_failover_even_when_the_old_master_took_writes(
    group: SentinelGroup,
) -> None:
    """Until the Sentinels demote it, the old master still takes the pushes of clients connected
    to it, and loses them when it becomes a replica; the numbers after it restart lower. With the
    history in the epoch, those numbers come with another epoch: never a position seen before."""
    store = RedisStreamStore(shards=[shard_of(group)], prefix=f"sentinel-{next(_ids)}", max_messages=100, ttl_s=60)
    handed_out: list[StreamHead] = [store.append(["s1"], '{"type":"x"}')["s1"]]
    old_master = group.master_port()
    group.sentinel_client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            handed_out.append(store.append(["s1"], '{"type":"x"}')["s1"])
        with contextlib.suppress(redis.RedisError):
            demoted = redis.Redis(port=old_master, socket_timeout=1).info("replication")["role"] == "slave"
            if demoted and handed_out[-1].epoch != handed_out[0].epoch:
                break
        await asyncio.sleep(0.05)
    epochs = list(dict.fromkeys(head.epoch for head in handed_out))
    assert len(epochs) >= 2, "the failover never showed"
    assert len(set(handed_out)) == len(handed_out)  # no (epoch, seq) twice
    for epoch in epochs:
        numbers = [head.seq for head in handed_out if head.epoch == epoch]
        assert numbers == sorted(numbers)
