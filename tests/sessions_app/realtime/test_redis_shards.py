"""Several Redis shards: every process places a key by its owner on the same shard, the stores
keep each owner's keys together, and the channel layer reaches a connection whichever shard a
message lands on (docs/redis.md). Two redis-servers of the tests' own."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from sessions_app.realtime import ErrorCode, ProtocolError, internals
from sessions_app.realtime.limits import RedisConnectionLimiter, Slot
from sessions_app.realtime.redis_clients import RedisShard, shard_index
from sessions_app.realtime.redis_layer import RedisLayer
from sessions_app.realtime.stream import RedisStreamStore, StreamHead
from sessions_app.socket_tickets import RedisTicketStore
from tests.support.faults import RedisServer
from tests.support.redis_servers import redis_shards

pytestmark = [pytest.mark.production]

_ids = itertools.count(1)


def test_an_owner_has_one_shard_the_same_in_every_process_and_owners_spread_evenly() -> None:
    owners = [f"session-{n}" for n in range(4000)]
    assert [shard_index(o, 4) for o in owners] == [shard_index(o, 4) for o in owners]
    spread = Counter(shard_index(o, 4) for o in owners)
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 800
    assert all(shard_index(o, 1) == 0 for o in owners[:50])


def test_adding_a_shard_moves_only_the_owners_that_go_to_it() -> None:
    owners = [f"user:{n}" for n in range(4000)]
    moved = [o for o in owners if shard_index(o, 3) != shard_index(o, 4)]
    assert all(shard_index(o, 4) == 3 for o in moved)  # nothing moves between the old shards
    assert 700 < len(moved) < 1300  # about a quarter


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_shards(tmp_path_factory.mktemp("shards"), 2) as servers:
        yield servers


def shard_list(servers: list[RedisServer]) -> list[RedisShard]:
    return [RedisShard(url=s.url) for s in servers]


def keys_on(server: RedisServer, prefix: str) -> set[str]:
    return {k.decode() for k in redis.Redis.from_url(server.url).scan_iter(f"{prefix}:*")}


def owner_on(shard: int, template: str) -> str:
    return next(template.format(n) for n in range(10_000) if shard_index(template.format(n), 2) == shard)


async def test_a_session_stream_lives_on_its_sessions_shard_and_a_push_numbers_each_where_it_is(
    shards: list[RedisServer],
) -> None:
    prefix = f"shard-stream-{next(_ids)}"
    store = RedisStreamStore(shards=shard_list(shards), prefix=prefix, max_messages=5, ttl_s=60)
    first, second = owner_on(0, "s-{}"), owner_on(1, "s-{}")
    heads = store.append([first, second], '{"type":"x"}')
    assert (heads[first].seq, heads[second].seq) == (1, 1)
    assert keys_on(shards[0], prefix) == {f"{prefix}:stream:{first}:m", f"{prefix}:stream:{first}:l"}
    assert keys_on(shards[1], prefix) == {f"{prefix}:stream:{second}:m", f"{prefix}:stream:{second}:l"}
    store.append([second], '{"type":"y"}')
    assert await store.heads([first, second]) == {first: heads[first], second: StreamHead(heads[second].epoch, 2)}
    replay = await store.read_after(second, 0)
    assert replay is not None and replay.complete and [seq for seq, _ in replay.entries] == [1, 2]
    # Another process with the same shards finds them where they are.
    other = RedisStreamStore(shards=shard_list(shards), prefix=prefix, max_messages=5, ttl_s=60)
    assert await other.head(second) == StreamHead(heads[second].epoch, 2)
    store.reset([first, second])
    assert keys_on(shards[0], prefix) | keys_on(shards[1], prefix) == set()


def user_slot(user: int, ip: str) -> Slot:
    return Slot(user_id=user, device_pk=next(_ids) + 1000, ip=ip, connection_id=f"c{next(_ids)}")


async def test_the_user_and_address_counts_live_on_their_own_shards_and_a_refusal_on_one_gives_back_the_other(
    shards: list[RedisServer],
) -> None:
    prefix = f"shard-limits-{next(_ids)}"
    user = int(owner_on(0, "user:{}").split(":")[1])
    ip = owner_on(1, "ip:10.1.0.{}").split(":")[1]
    one, other = (
        RedisConnectionLimiter(shards=shard_list(shards), prefix=prefix, per_user=5, per_ip=1, ttl_ms=30_000)
        for _ in range(2)
    )
    first = user_slot(user, ip)
    await one.acquire(first)
    assert keys_on(shards[0], prefix) == {f"{prefix}:wsconn:user:{user}"}
    assert keys_on(shards[1], prefix) == {f"{prefix}:wsconn:ip:{ip}"}
    # The address is full (on shard 1) after the user's count (shard 0) took the new connection.
    with pytest.raises(ProtocolError) as refused:
        await other.acquire(user_slot(user, ip))
    assert refused.value.code == ErrorCode.TOO_MANY_CONNECTIONS
    assert "WS_MAX_CONNECTIONS_PER_IP" in refused.value.message
    assert redis.Redis.from_url(shards[0].url).zcard(f"{prefix}:wsconn:user:{user}") == 1  # given back
    await one.refresh()
    await one.release(first)
    await other.acquire(user_slot(user, ip))


async def test_on_several_shards_the_limits_are_never_sent_in_another_round_trip_and_release_keeps_its_work(
    shards: list[RedisServer],
) -> None:
    prefix = f"shard-limits-{next(_ids)}"
    limiter = RedisConnectionLimiter(shards=shard_list(shards), prefix=prefix, per_user=1, per_ip=1, ttl_ms=30_000)
    user = int(owner_on(0, "user:{}").split(":")[1])
    held = user_slot(user, owner_on(1, "ip:10.2.0.{}").split(":")[1])
    assert limiter.acquire_command(held) is None  # its two counts may be on two shards: acquire() does it
    await limiter.acquire(held)

    assert limiter.release_commands(held) == []
    await limiter.release(held)  # still held, so release() gives it back on each shard
    assert keys_on(shards[0], prefix) | keys_on(shards[1], prefix) == set()


async def test_a_head_read_in_another_round_trip_names_its_sessions_shard_and_is_the_head_itself(
    shards: list[RedisServer],
) -> None:
    store = RedisStreamStore(shards=shard_list(shards), prefix=f"shard-head-{next(_ids)}", max_messages=5, ttl_s=60)
    session = owner_on(1, "s-{}")
    store.append([session], '{"type":"x"}')
    url, command = store.head_command(session)
    assert url == shards[1].url
    assert store.head_of(redis.Redis.from_url(url).execute_command(*command)) == await store.head(session)


def test_a_ticket_lives_on_the_shard_of_its_digest_and_is_redeemed_once_from_any_process(
    shards: list[RedisServer],
) -> None:
    prefix = f"shard-tickets-{next(_ids)}"
    issuing, redeeming = (RedisTicketStore(shards=shard_list(shards), prefix=prefix) for _ in range(2))
    digests = [owner_on(0, "digest-{}"), owner_on(1, "digest-{}")]
    for pk, digest in enumerate(digests):
        issuing.put(digest, pk, ttl_ms=10_000)
    assert keys_on(shards[0], prefix) == {f"{prefix}:wsticket:{digests[0]}"}
    assert keys_on(shards[1], prefix) == {f"{prefix}:wsticket:{digests[1]}"}
    assert [redeeming.take(d) for d in digests] == [0, 1]
    assert [issuing.take(d) for d in digests] == [None, None]


def sharded_layer(servers: list[RedisServer], prefix: str) -> RedisLayer:
    return RedisLayer(hosts=[{"address": s.url} for s in servers], prefix=prefix)


def process_key_counts(servers: list[RedisServer], layer: RedisLayer) -> list[int]:
    key = f"{layer.prefix}specific.{layer.client_prefix}!"
    return [redis.Redis.from_url(s.url).zcard(key) for s in servers]


def channel_hashed_elsewhere(layer: RedisLayer, channels: list[str]) -> str:
    """A channel whose full name channels-redis's own send() would hash to another shard than its process."""
    home = internals.redis_receive_batch_key(layer)[0]
    from channels_redis.utils import _consistent_hash

    return next(c for c in channels if _consistent_hash(c, layer.ring_size) != home)


@override_settings(CHANNEL_LAYER_POOL_SIZE=10)
async def test_a_send_to_one_connection_lands_on_its_processs_shard_and_reaches_it(
    shards: list[RedisServer],
) -> None:
    receiving, sending = (sharded_layer(shards, f"shard-layer-{next(_ids)}") for _ in range(2))
    sending.prefix = receiving.prefix
    channels = [await receiving.new_channel() for _ in range(32)]
    channel = channel_hashed_elsewhere(receiving, channels)
    home = internals.redis_receive_batch_key(receiving)[0]
    try:
        await sending.send(channel, {"type": "direct"})
        counts = process_key_counts(shards, receiving)
        assert counts[home] == 1 and sum(counts) == 1
        inbox: asyncio.Queue = asyncio.Queue()
        receiving.deliver_into(channel, inbox)
        assert await asyncio.wait_for(inbox.get(), 10) == {"type": "direct"}
    finally:
        await receiving.flush()
        await sending.flush()


@override_settings(CHANNEL_LAYER_POOL_SIZE=10)
async def test_the_reader_also_takes_what_a_stock_sender_put_on_another_shard(
    shards: list[RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiving = sharded_layer(shards, f"shard-stock-{next(_ids)}")
    channels = [await receiving.new_channel() for _ in range(32)]
    channel = channel_hashed_elsewhere(receiving, channels)
    home = internals.redis_receive_batch_key(receiving)[0]
    monkeypatch.setattr(internals.REDIS_PROCESS_SHARD, "_verdict", False)  # a sender hashing as channels-redis does
    stock = sharded_layer(shards, receiving.prefix)
    try:
        await stock.send(channel, {"type": "from a stock sender"})
        counts = process_key_counts(shards, receiving)
        assert counts[home] == 0 and sum(counts) == 1  # channels#1492: not on the process's shard
        inbox: asyncio.Queue = asyncio.Queue()
        receiving.deliver_into(channel, inbox)
        assert await asyncio.wait_for(inbox.get(), 10) == {"type": "from a stock sender"}
    finally:
        await receiving.flush()
        await stock.flush()


@override_settings(CHANNEL_LAYER_POOL_SIZE=10)
async def test_groups_on_both_shards_reach_connections_of_two_processes(shards: list[RedisServer]) -> None:
    prefix = f"shard-groups-{next(_ids)}"
    one, two = sharded_layer(shards, prefix), sharded_layer(shards, prefix)
    by_shard = {one.consistent_hash(g): g for g in (f"g{n}" for n in range(50))}
    assert set(by_shard) == {0, 1}
    inboxes: dict[str, asyncio.Queue] = {}
    try:
        for layer in (one, two):
            channel = await layer.new_channel()
            inboxes[channel] = asyncio.Queue()
            layer.deliver_into(channel, inboxes[channel])
            await layer.group_add_many(list(by_shard.values()), channel)
        for shard, group in sorted(by_shard.items()):
            await one.group_send(group, {"type": "to", "shard": shard})
        for inbox in inboxes.values():
            got = [await asyncio.wait_for(inbox.get(), 10) for _ in range(2)]
            assert sorted(m["shard"] for m in got) == [0, 1]
    finally:
        await one.flush()
        await two.flush()


def test_a_store_without_any_redis_is_refused() -> None:
    with pytest.raises(ValueError, match="url or shards"):
        RedisTicketStore(prefix="x")
