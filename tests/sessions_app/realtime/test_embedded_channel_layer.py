"""The embedded channel layer keeps the Channels layer specification: messages in order, a copy for
each recipient, a bounded channel, expiry of messages and memberships, and no memory for a channel
nobody reads."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from channels.exceptions import ChannelFull

from sessions_app.realtime.memory_layer import EmbeddedChannelLayer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_channel_receives_its_own_and_its_groups_messages_in_order() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "direct", "n": 1})
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "grouped", "n": 2})

    assert [await layer.receive(channel), await layer.receive(channel)] == [
        {"type": "direct", "n": 1},
        {"type": "grouped", "n": 2},
    ]


async def test_each_recipient_gets_its_own_copy_of_a_group_message() -> None:
    layer = EmbeddedChannelLayer()
    channels = [await layer.new_channel() for _ in range(2)]
    for channel in channels:
        await layer.group_add("g", channel)
    message = {"type": "x", "items": [1]}
    await layer.group_send("g", message)
    message["items"].append(2)  # the sender reuses its dict
    first, second = [await layer.receive(channel) for channel in channels]
    first["items"].append(3)

    assert (first, second) == ({"type": "x", "items": [1, 3]}, {"type": "x", "items": [1]})


async def test_a_full_channel_refuses_a_direct_send_and_a_group_send_skips_it() -> None:
    layer = EmbeddedChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    for n in range(5):
        await layer.group_send("g", {"type": "x", "n": n})

    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "y"})
    assert [await layer.receive(channel) for _ in range(2)] == [{"type": "x", "n": 0}, {"type": "x", "n": 1}]


async def test_a_message_past_its_expiry_is_never_received() -> None:
    clock = Clock()
    layer = EmbeddedChannelLayer(expiry=60, clock=clock)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "old"})
    clock.now += 61
    await layer.send(channel, {"type": "new"})

    assert await layer.receive(channel) == {"type": "new"}


async def test_a_channel_whose_message_expired_unread_leaves_its_groups_at_the_next_sweep() -> None:
    clock = Clock()
    layer = EmbeddedChannelLayer(expiry=60, clock=clock)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", gone)
    await layer.group_add("g", alive)
    await layer.group_send("g", {"type": "unread by gone"})
    await layer.receive(alive)
    clock.now += 61  # a consumer that stopped without leaving its groups never read it
    await layer.group_send("g", {"type": "next"})

    assert set(layer.groups["g"]) == {alive}
    assert await layer.receive(alive) == {"type": "next"}


async def test_the_sweep_runs_at_most_once_a_second_however_many_calls_come() -> None:
    clock = Clock()
    layer = EmbeddedChannelLayer(expiry=1, clock=clock)
    gone = await layer.new_channel()
    await layer.group_add("g", gone)
    await layer.send(gone, {"type": "unread"})  # swept now; the message expires a second later
    clock.now += 1.0
    await layer.group_send("other", {"type": "x"})  # swept again: not expired yet, the next sweep in 1 s
    clock.now += 0.5  # expired now, but within the second
    for _ in range(100):
        await layer.group_send("other", {"type": "x"})
    stayed = gone in layer.groups.get("g", {})
    clock.now += 0.5
    await layer.group_send("other", {"type": "x"})

    assert stayed is True
    assert "g" not in layer.groups


async def test_a_membership_older_than_the_group_expiry_ends() -> None:
    clock = Clock()
    layer = EmbeddedChannelLayer(group_expiry=3600, clock=clock)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    clock.now += 3601
    await layer.group_send("g", {"type": "x"})

    assert "g" not in layer.groups


async def test_a_receiver_that_is_cancelled_leaves_no_queue_behind() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # it waits on its channel's queue now
    held_while_waiting = channel in layer.channels
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting

    assert held_while_waiting is True
    assert channel not in layer.channels


async def test_a_message_sent_while_a_receiver_waits_reaches_it() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x"})

    assert await asyncio.wait_for(waiting, timeout=5) == {"type": "x"}
    assert channel not in layer.channels


async def test_a_message_handed_to_a_receiver_as_it_is_cancelled_goes_to_the_next_receive() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x"})  # handed to the waiting receiver...
    waiting.cancel()  # ...which is cancelled before it runs again
    with contextlib.suppress(asyncio.CancelledError):
        await waiting

    assert waiting.cancelled()
    assert await asyncio.wait_for(layer.receive(channel), timeout=5) == {"type": "x"}


async def test_an_idle_channel_with_a_receiver_waiting_holds_no_message_queue() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    assert await layer.receive(channel) == {"type": "x"}
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)

    assert layer.channels[channel].messages is None  # idle memory per connection: no deque kept
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
