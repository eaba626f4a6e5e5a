"""The tick relay skips ticks that a newer one replaced while its followers were busy: prices
never fall behind, however slow a pass over the followers is."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from market_app import tick_fanout
from market_app.groups import ticks_group
from market_app.tick_fanout import TickRelay


def tick(seq: int) -> dict:
    return {"type": "market.tick", "seq": seq, "timestamp": seq, "symbols": {}}


async def test_a_slow_pass_skips_to_the_newest_tick_instead_of_falling_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[int] = []

    async def slow_delivery(conn: object, event: dict) -> None:
        await asyncio.sleep(0.05)  # one pass takes longer than ticks arrive
        delivered.append(event["seq"])

    monkeypatch.setattr(tick_fanout, "deliver_tick", slow_delivery)

    class Follower:
        pass

    follower = Follower()
    relay = TickRelay()
    await relay.follow(follower)  # type: ignore[arg-type]
    layer = get_channel_layer()
    for seq in range(1, 21):
        await layer.group_send(ticks_group(), tick(seq))
        await asyncio.sleep(0.01)  # a tick every 10 ms
    await asyncio.sleep(0.2)
    relay._task.cancel()  # type: ignore[union-attr]

    assert delivered == sorted(set(delivered))  # in order, never twice
    assert delivered[-1] == 20  # the newest arrives
    assert len(delivered) < 10  # the rest were replaced while the pass ran


async def test_ticks_that_arrive_together_are_all_relayed_while_no_pass_is_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivered: list[int] = []

    async def quick_delivery(conn: object, event: dict) -> None:
        delivered.append(event["seq"])

    monkeypatch.setattr(tick_fanout, "deliver_tick", quick_delivery)

    class Follower:
        pass

    follower = Follower()  # followers are held weakly
    relay = TickRelay()
    await relay.follow(follower)  # type: ignore[arg-type]
    layer = get_channel_layer()
    for seq in range(1, 6):  # queued at once, as one batch from Redis hands them over
        await layer.group_send(ticks_group(), tick(seq))
    await asyncio.sleep(0.2)
    relay._task.cancel()  # type: ignore[union-attr]

    assert delivered == [1, 2, 3, 4, 5]
