"""The embedded channel layer: its expiry sweep runs at most once a second, and a connection's
messages go straight into its inbox."""

from __future__ import annotations

import asyncio

import pytest

from sessions_app.realtime import memory_layer
from sessions_app.realtime.memory_layer import EmbeddedChannelLayer


def test_sends_and_receives_like_the_in_memory_layer() -> None:
    async def scenario() -> dict:
        layer = EmbeddedChannelLayer()
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "x.y", "n": 1})
        return await layer.receive(channel)

    assert asyncio.run(scenario()) == {"type": "x.y", "n": 1}


def test_expired_messages_are_still_dropped_once_the_sweep_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    sweeps: list[int] = []
    original = memory_layer.InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(
        memory_layer.InMemoryChannelLayer, "_clean_expired", lambda self: (sweeps.append(1), original(self))
    )

    async def scenario() -> tuple[int, bool]:
        layer = EmbeddedChannelLayer(expiry=0)  # every message expires at once
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "old"})
        for _ in range(100):
            await layer.group_send("nobody", {"type": "x"})  # each call would sweep everything
        swept_while_busy = len(sweeps)
        layer._next_sweep = 0.0  # a second later
        await layer.group_send("nobody", {"type": "x"})
        return swept_while_busy, channel in layer.channels

    swept_while_busy, still_queued = asyncio.run(scenario())
    assert swept_while_busy <= 1
    assert still_queued is False


def test_a_connection_inbox_receives_its_channel_messages_directly_in_order_after_any_queued_before() -> None:
    async def scenario() -> tuple[list[dict], bool]:
        layer = EmbeddedChannelLayer()
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "early"})  # sent before the consumer took its inbox
        inbox: asyncio.Queue = asyncio.Queue()
        layer.deliver_into(channel, inbox)
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "grouped"})
        await layer.send(channel, {"type": "direct"})
        return [inbox.get_nowait() for _ in range(inbox.qsize())], channel in layer.channels

    received, layer_still_queues = asyncio.run(scenario())
    assert received == [{"type": "early"}, {"type": "grouped"}, {"type": "direct"}]
    assert layer_still_queues is False


def test_each_recipient_gets_its_own_copy_of_a_group_message() -> None:
    async def scenario() -> list[dict]:
        layer = EmbeddedChannelLayer()
        inboxes = []
        for _ in range(2):
            channel = await layer.new_channel()
            inbox: asyncio.Queue = asyncio.Queue()
            layer.deliver_into(channel, inbox)
            await layer.group_add("g", channel)
            inboxes.append(inbox)
        message = {"type": "x", "items": [1]}
        await layer.group_send("g", message)
        message["items"].append(2)  # the sender reuses its dict
        first, second = (inbox.get_nowait() for inbox in inboxes)
        first["items"].append(3)
        return [first, second]

    assert asyncio.run(scenario()) == [{"type": "x", "items": [1, 3]}, {"type": "x", "items": [1]}]


def test_a_full_inbox_refuses_a_direct_send_and_a_group_send_skips_it() -> None:
    async def scenario() -> tuple[bool, int]:
        layer = EmbeddedChannelLayer(capacity=2)
        channel = await layer.new_channel()
        inbox: asyncio.Queue = asyncio.Queue()
        layer.deliver_into(channel, inbox)
        await layer.group_add("g", channel)
        for n in range(5):
            await layer.group_send("g", {"type": "x", "n": n})
        try:
            await layer.send(channel, {"type": "y"})
        except memory_layer.ChannelFull:
            refused = True
        else:
            refused = False
        return refused, inbox.qsize()

    assert asyncio.run(scenario()) == (True, 2)


def test_a_consumer_that_stops_without_leaving_its_groups_is_dropped_from_them_once_a_message_expires() -> None:
    async def scenario() -> tuple[dict, dict]:
        layer = EmbeddedChannelLayer(expiry=0)  # every queued message expires at once
        channel = await layer.new_channel()
        layer.deliver_into(channel, asyncio.Queue())
        await layer.group_add("g", channel)
        layer.stop_delivering(channel)
        await layer.group_send("g", {"type": "late"})  # nobody reads it: the ordinary queue
        layer._next_sweep = 0.0  # a second later
        await layer.group_send("nobody", {"type": "x"})
        return layer.inboxes, {group: dict(members) for group, members in layer.groups.items() if members}

    inboxes, groups = asyncio.run(scenario())
    assert inboxes == {} and groups == {}
