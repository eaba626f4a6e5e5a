"""The production channel layer (sessions_app/realtime/redis_layer.py) against a redis-server of
the module's own: the Channels layer specification across processes (a layer instance each),
what a handshake costs Redis, and a Redis restart."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from sessions_app.realtime.redis_layer import RedisPubSubLayer
from tests.support.faults import RedisServer
from tests.support.liveserver import free_port

pytestmark = [pytest.mark.production]

_ids = itertools.count(1)
DEADLINE_S = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    own = RedisServer(tmp_path_factory.mktemp("layer")).start()
    try:
        yield own
    finally:
        own.stop()


def layer_on(server: RedisServer, prefix: str, **options: object) -> RedisPubSubLayer:
    return RedisPubSubLayer(shards=[{"url": server.url}], prefix=prefix, **options)  # type: ignore[arg-type]


def command_calls(server: RedisServer, command: str) -> int:
    stats = redis.Redis.from_url(server.url).info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def dropped_as_full() -> float:
    return REGISTRY.get_sample_value("channel_layer_send_failures_total", {"kind": "full"}) or 0.0


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def processes(server: RedisServer) -> AsyncIterator[tuple[RedisPubSubLayer, RedisPubSubLayer]]:
    """The layer of two processes sharing a prefix."""
    prefix = f"two-{next(_ids)}"
    one, two = layer_on(server, prefix), layer_on(server, prefix)
    yield one, two
    await one.flush()
    await two.flush()


async def test_a_message_reaches_a_channel_of_another_process_even_before_its_first_receive(
    processes: tuple[RedisPubSubLayer, RedisPubSubLayer],
) -> None:
    one, two = processes
    channel = await one.new_channel()
    await two.send(channel, {"type": "hello", "n": 1})
    await two.send(channel, {"type": "hello", "n": 2})
    assert await asyncio.wait_for(one.receive(channel), DEADLINE_S) == {"type": "hello", "n": 1}
    assert await asyncio.wait_for(one.receive(channel), DEADLINE_S) == {"type": "hello", "n": 2}


async def test_a_group_message_reaches_each_member_of_every_process_once_and_a_discarded_one_no_more(
    server: RedisServer, processes: tuple[RedisPubSubLayer, RedisPubSubLayer]
) -> None:
    one, two = processes
    members = [(one, await one.new_channel()), (one, await one.new_channel()), (two, await two.new_channel())]
    for layer, channel in members:
        await layer.group_add("prices", channel)
    await one.group_send("prices", {"type": "tick", "n": 1})
    for layer, channel in members:
        assert await asyncio.wait_for(layer.receive(channel), DEADLINE_S) == {"type": "tick", "n": 1}
    await two.group_discard("prices", members[2][1])
    await two.group_send("prices", {"type": "tick", "n": 2})
    for layer, channel in members[:2]:
        assert await asyncio.wait_for(layer.receive(channel), DEADLINE_S) == {"type": "tick", "n": 2}
    with pytest.raises(TimeoutError):  # not sent to it: nothing can arrive later
        await asyncio.wait_for(two.receive(members[2][1]), 0.3)
    listed = {name.decode() for name in redis.Redis.from_url(server.url).pubsub_channels(f"{one.prefix}*")}
    assert f"{one.prefix}__group__prices" in listed  # still one member, in the first process


async def test_a_named_channel_reaches_every_process_that_receives_on_it(server: RedisServer) -> None:
    prefix = f"named-{next(_ids)}"
    workers = [layer_on(server, prefix) for _ in range(2)]
    sender = layer_on(server, prefix)
    try:
        waiting = [asyncio.ensure_future(w.receive("simulators.assign")) for w in workers]

        async def both_listen() -> bool:
            counts = dict(redis.Redis.from_url(server.url).pubsub_numsub(f"{prefix}simulators.assign"))
            return counts.get(f"{prefix}simulators.assign".encode(), 0) == 2

        await until(both_listen, "both workers subscribed")
        await sender.send("simulators.assign", {"type": "assign", "run": "r1"})
        assert [await asyncio.wait_for(w, DEADLINE_S) for w in waiting] == [{"type": "assign", "run": "r1"}] * 2
    finally:
        for layer in (*workers, sender):
            await layer.flush()


async def test_a_connect_storm_costs_redis_one_inbox_and_a_few_batched_subscribes(server: RedisServer) -> None:
    """Each handshake makes a channel and joins its user's group. The channels share the
    process's inbox (one SUBSCRIBE for all of them); the groups asked for together go in one."""
    prefix = f"storm-{next(_ids)}"
    layer = layer_on(server, prefix)
    try:
        await layer.new_channel()  # the process's inbox, subscribed once
        before = command_calls(server, "subscribe")

        async def handshake(user: int) -> None:
            channel = await layer.new_channel()
            await layer.group_add(f"user.{user}", channel)

        await asyncio.gather(*(handshake(user) for user in range(500)))
        listed = redis.Redis.from_url(server.url).pubsub_channels(f"{prefix}*")
        assert len(listed) == 501  # 500 groups and one inbox
        assert command_calls(server, "subscribe") - before <= 5
    finally:
        await layer.flush()


async def test_a_channel_whose_reader_left_keeps_its_messages_for_the_expiry_then_lets_go(
    server: RedisServer,
) -> None:
    prefix = f"expiry-{next(_ids)}"
    kept, dropped = layer_on(server, prefix), layer_on(server, prefix, expiry=0)
    try:
        channel = await kept.new_channel()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(kept.receive(channel), 0.05)  # its reader leaves (a timeout)
        await kept.send(channel, {"type": "later"})
        assert await asyncio.wait_for(kept.receive(channel), DEADLINE_S) == {"type": "later"}

        name = f"{prefix}gone.soon"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(dropped.receive("gone.soon"), 0.05)

        async def unsubscribed() -> bool:
            await dropped.new_channel()  # any call sweeps (at most once a second)
            return dict(redis.Redis.from_url(server.url).pubsub_numsub(name)).get(name.encode(), 0) == 0

        await until(unsubscribed, "the unread named channel unsubscribed")
    finally:
        await kept.flush()
        await dropped.flush()


async def test_a_full_channel_drops_what_more_arrives_and_counts_it(server: RedisServer) -> None:
    prefix = f"full-{next(_ids)}"
    layer = layer_on(server, prefix, capacity=2)
    try:
        channel = await layer.new_channel()
        before = dropped_as_full()
        for n in range(3):
            await layer.send(channel, {"type": "m", "n": n})

        async def counted() -> bool:
            return dropped_as_full() == before + 1

        await until(counted, "the third message counted as dropped")
        got = [await asyncio.wait_for(layer.receive(channel), DEADLINE_S) for _ in range(2)]
        assert [m["n"] for m in got] == [0, 1]
    finally:
        await layer.flush()


async def test_subscriptions_come_back_after_redis_restarts(tmp_path_factory: pytest.TempPathFactory) -> None:
    own = RedisServer(tmp_path_factory.mktemp("restart")).start()
    prefix = f"restart-{next(_ids)}"
    layer = layer_on(own, prefix, timeout=6)
    try:
        channel = await layer.new_channel()
        await layer.group_add("prices", channel)
        own.kill()
        own.start()  # the same port, empty: no subscriber until the layer reconnects

        async def heard() -> bool:
            try:
                await layer.group_send("prices", {"type": "after"})
                return await asyncio.wait_for(layer.receive(channel), 0.2) == {"type": "after"}
            except (TimeoutError, redis.RedisError):
                return False

        await until(heard, "a group message after the restart")
    finally:
        await layer.flush()
        own.stop()


async def test_an_unreachable_redis_fails_a_new_channel_at_once_not_after_the_timeout() -> None:
    """A handshake makes its channel first: it is refused (service_unavailable), not held 15 s."""
    layer = RedisPubSubLayer(shards=[{"url": f"redis://:secret@127.0.0.1:{free_port()}/0"}], prefix="nowhere")
    try:
        with pytest.raises(redis.ConnectionError) as refused:
            await asyncio.wait_for(layer.new_channel(), 5)
        assert "secret" not in str(refused.value)
        with pytest.raises(redis.ConnectionError):  # and the next at once too, while it stays down
            await asyncio.wait_for(layer.new_channel(), 1)
    finally:
        await layer.flush()
