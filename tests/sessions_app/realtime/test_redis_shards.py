"""Several Redis shards: every process places a key by its owner on the same shard, the stores
keep each owner's keys together, and the channel layer reaches a connection whichever shard a
message lands on (docs/redis.md). Two redis-servers of the tests' own."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.limits import RedisConnectionLimiter, Slot
from sessions_app.realtime.redis_clients import RedisShard, shard_index
from sessions_app.realtime.redis_layer import RedisPubSubLayer
from sessions_app.realtime.session_stream import RedisStreamStore, StreamHead
from sessions_app.socket_tickets import RedisTicketStore
from tests.support.faults import RedisServer
from tests.support.production import redis_keys
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
    return set(redis_keys(server.url, f"{prefix}:*"))


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


def sharded_layer(servers: list[RedisServer], prefix: str) -> RedisPubSubLayer:
    """The production channel layer of one process, on every shard."""
    return RedisPubSubLayer(shards=[{"url": s.url} for s in servers], prefix=prefix)


def subscribed_on(server: RedisServer, names: list[str]) -> list[str]:
    """Which of `names` that server's pub/sub has subscribers for (where the layer put them)."""
    listed = {name.decode() for name in redis.Redis.from_url(server.url).pubsub_channels()}
    return [name for name in names if name in listed]


async def heard(
    send: Callable[[], Awaitable[None]], receivers: list[tuple[RedisPubSubLayer, str]], message: dict
) -> None:
    """Send until every receiver heard `message` once: a subscription takes effect once Redis has
    read it, and pub/sub delivers only to the subscribers it already has."""
    waiting = list(receivers)
    deadline = time.monotonic() + 10
    while waiting:
        assert time.monotonic() < deadline, f"{[c for _, c in waiting]} never heard {message}"
        await send()
        for layer, channel in list(waiting):
            try:
                got = await asyncio.wait_for(layer.receive(channel), 0.5)
            except TimeoutError:
                continue
            assert got == message
            waiting.remove((layer, channel))


async def test_a_send_to_a_connection_of_another_process_reaches_it_whichever_shard_its_inbox_is_on(
    shards: list[RedisServer],
) -> None:
    """A process's channels share one Redis channel, its inbox, on the shard its name hashes to:
    processes until each shard holds one, and a send from another process reaches each."""
    prefix = f"shard-layer-{next(_ids)}"
    sending = sharded_layer(shards, prefix)
    made: list[RedisPubSubLayer] = []
    receivers: dict[int, tuple[RedisPubSubLayer, str]] = {}
    try:
        while len(receivers) < len(shards):
            assert len(made) < 64, "every process's inbox hashed to the same shard"
            layer = sharded_layer(shards, prefix)
            made.append(layer)
            channel = await layer.new_channel()
            receivers.setdefault(layer.redis.index(layer.redis_name(channel)), (layer, channel))
        for index, server in enumerate(shards):
            layer, channel = receivers[index]
            assert subscribed_on(server, [layer.redis_name(channel)])  # where every process will publish
            message = {"type": "direct", "server": server.port}
            await heard(lambda c=channel, m=message: sending.send(c, m), [(layer, channel)], message)
    finally:
        for layer in made:
            await layer.flush()
        await sending.flush()


async def test_groups_on_both_shards_reach_connections_of_two_processes(shards: list[RedisServer]) -> None:
    prefix = f"shard-groups-{next(_ids)}"
    one, two = sharded_layer(shards, prefix), sharded_layer(shards, prefix)
    receivers = []
    groups = [f"g{n}" for n in range(16)]
    try:
        for layer in (one, two):
            channel = await layer.new_channel()
            receivers.append((layer, channel))
            for group in groups:
                await layer.group_add(group, channel)
        for server in shards:
            names = [f"{prefix}__group__{group}" for group in groups]
            await until_listed(server, names)
            group = subscribed_on(server, names)[0].removeprefix(f"{prefix}__group__")
            message = {"type": "to", "server": server.port}
            await heard(lambda g=group, m=message: one.group_send(g, m), receivers, message)
    finally:
        await one.flush()
        await two.flush()


async def until_listed(server: RedisServer, names: list[str]) -> None:
    deadline = time.monotonic() + 10
    while not subscribed_on(server, names):
        assert time.monotonic() < deadline, f"none of {names} subscribed on {server.url}"
        await asyncio.sleep(0.05)


def test_a_store_without_any_redis_is_refused() -> None:
    with pytest.raises(ValueError, match="url or shards"):
        RedisTicketStore(prefix="x")
