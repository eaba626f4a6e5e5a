"""One reader per process takes the production layer's messages from Redis in batches and routes
each into the inbox of the connection it is for (sessions_app/realtime/redis_layer.py).

Against the machine's Redis (a private key prefix per test); under CI=true an unreachable Redis
fails these tests. The restart test runs a redis-server of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions

from sessions_app.realtime import internals, metrics
from sessions_app.realtime.redis_layer import RECEIVE_BATCH, RedisLayer
from tests.support.faults import RedisServer
from tests.support.production import REDIS_URL, private_redis_prefix, require_services

pytestmark = [pytest.mark.production]


@pytest.fixture
def prefix() -> Iterator[str]:
    with private_redis_prefix("reader") as prefix:
        yield prefix


def layer_at(url: str, prefix: str, **config: object) -> RedisLayer:
    return RedisLayer(hosts=[{"address": url}], prefix=prefix, **config)


@pytest.fixture
def counted_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the reader took from Redis."""
    sizes: list[int] = []
    real = internals.redis_receive_batch

    async def counting(layer: object, *, limit: int, timeout_s: float) -> list:
        batch = await real(layer, limit=limit, timeout_s=timeout_s)
        if batch:
            sizes.append(len(batch))
        return batch

    monkeypatch.setattr(internals, "redis_receive_batch", counting)
    return sizes


async def drain(inbox: asyncio.Queue, count: int, timeout_s: float = 10) -> list[dict]:
    return [await asyncio.wait_for(inbox.get(), timeout_s) for _ in range(count)]


async def test_a_backlog_for_the_process_reaches_each_inbox_in_order_a_batch_per_round_trip(
    prefix: str, counted_batches: list[int]
) -> None:
    require_services(REDIS_URL)
    layer = layer_at(REDIS_URL, prefix, capacity=2000)
    first, second = await layer.new_channel(), await layer.new_channel()
    inboxes = {first: asyncio.Queue(), second: asyncio.Queue()}
    for n in range(600):
        await layer.send(first if n % 2 else second, {"type": "bench.n", "n": n})
    for channel, inbox in inboxes.items():
        layer.deliver_into(channel, inbox)
    try:
        got_first = await drain(inboxes[first], 300)
        got_second = await drain(inboxes[second], 300)
    finally:
        await layer.flush()
    assert [m["n"] for m in got_first] == list(range(1, 600, 2))
    assert [m["n"] for m in got_second] == list(range(0, 600, 2))
    assert sum(counted_batches) == 600
    assert len(counted_batches) <= 600 // RECEIVE_BATCH + 1, counted_batches


async def test_one_group_send_reaches_every_member_connection_of_the_process(prefix: str) -> None:
    require_services(REDIS_URL)
    layer = layer_at(REDIS_URL, prefix)
    members = [await layer.new_channel() for _ in range(5)]
    inboxes = {channel: asyncio.Queue() for channel in members}
    for channel, inbox in inboxes.items():
        layer.deliver_into(channel, inbox)
        await layer.group_add("prices", channel)
    try:
        await layer.group_send("prices", {"type": "market.tick", "seq": 7})
        received = [await asyncio.wait_for(inbox.get(), 10) for inbox in inboxes.values()]
    finally:
        await layer.flush()
    assert received == [{"type": "market.tick", "seq": 7}] * 5


async def test_a_process_channel_without_an_inbox_reads_with_receive_and_loses_nothing_in_between(
    prefix: str,
) -> None:
    require_services(REDIS_URL)
    layer = layer_at(REDIS_URL, prefix)
    worker = await layer.new_channel()  # as the simulator worker and the tick relay read theirs
    connection = await layer.new_channel()
    layer.deliver_into(connection, asyncio.Queue())
    try:
        await layer.send(worker, {"type": "simulator.command", "n": 0})
        first = await asyncio.wait_for(layer.receive(worker), 10)
        for n in (1, 2, 3):  # arrive while nobody waits in receive()
            await layer.send(worker, {"type": "simulator.command", "n": n})
        await asyncio.sleep(0.3)
        rest = [await asyncio.wait_for(layer.receive(worker), 10) for _ in range(3)]
    finally:
        await layer.flush()
    assert [m["n"] for m in [first, *rest]] == [0, 1, 2, 3]


async def test_a_message_for_a_connection_that_left_is_dropped_not_kept(prefix: str) -> None:
    require_services(REDIS_URL)
    layer = layer_at(REDIS_URL, prefix)
    gone, staying = await layer.new_channel(), await layer.new_channel()
    inbox = asyncio.Queue()
    layer.deliver_into(gone, asyncio.Queue())
    layer.deliver_into(staying, inbox)
    layer.stop_delivering(gone)
    try:
        await layer.send(gone, {"type": "late"})
        await layer.send(staying, {"type": "marker"})
        assert await asyncio.wait_for(inbox.get(), 10) == {"type": "marker"}
    finally:
        await layer.flush()
    assert gone not in layer.receive_buffer


async def test_an_inbox_at_capacity_drops_the_event_and_counts_it(prefix: str) -> None:
    require_services(REDIS_URL)
    layer = layer_at(REDIS_URL, prefix, capacity=3)
    slow, other = await layer.new_channel(), await layer.new_channel()
    full, inbox = asyncio.Queue(), asyncio.Queue()
    for n in range(3):
        full.put_nowait({"type": "websocket.receive", "n": n})  # a connection that stopped reading
    layer.deliver_into(slow, full)
    layer.deliver_into(other, inbox)
    overflow = metrics.CHANNEL_LAYER_FAILURES.labels("overflow")
    before = overflow._value.get()
    try:
        await layer.send(slow, {"type": "too.many"})
        await layer.send(other, {"type": "marker"})
        await asyncio.wait_for(inbox.get(), 10)
    finally:
        await layer.flush()
    assert full.qsize() == 3
    assert overflow._value.get() == before + 1


async def test_after_a_redis_restart_every_connection_is_told_to_rejoin_and_events_flow_again(
    tmp_path: Path,
) -> None:
    own = RedisServer(tmp_path).start()
    try:
        layer = layer_at(own.url, "restart", capacity=100)
        channel = await layer.new_channel()
        inbox: asyncio.Queue = asyncio.Queue()
        layer.deliver_into(channel, inbox)
        await layer.send(channel, {"type": "before"})
        assert await asyncio.wait_for(inbox.get(), 10) == {"type": "before"}
        own.kill()
        await asyncio.sleep(1.5)  # the reader fails and backs off
        own = RedisServer(tmp_path, port=own.port).start()
        assert await asyncio.wait_for(inbox.get(), 20) == {"type": "layer.recovered"}
        for attempt in range(3):  # the pool's connections from before the restart are dead
            try:
                await layer.send(channel, {"type": "after"})
                break
            except redis.exceptions.ConnectionError:
                if attempt == 2:
                    raise
        assert await asyncio.wait_for(inbox.get(), 10) == {"type": "after"}
    finally:
        own.stop()


async def test_without_its_guard_the_layer_reads_as_channels_redis_does(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services(REDIS_URL)
    monkeypatch.setattr(internals.REDIS_BATCHED_RECEIVE, "_verdict", False)
    layer = layer_at(REDIS_URL, prefix)
    channel = await layer.new_channel()
    try:
        assert not layer.delivers_into_inboxes()
        await layer.send(channel, {"type": "stock"})
        assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "stock"}
    finally:
        await layer.flush()
    assert layer._reader is None
