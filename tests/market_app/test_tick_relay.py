"""The tick relay skips ticks that a newer one replaced while its followers were busy: prices
never fall behind, however slow a pass over the followers is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY

from market_app import tick_fanout
from market_app.groups import ticks_group
from market_app.tick_fanout import TickRelay


def tick(seq: int) -> dict:
    return {"type": "market.tick", "seq": seq, "timestamp": seq, "symbols": {}}


def skipped() -> float:
    return REGISTRY.get_sample_value("market_ticks_skipped_total") or 0.0


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Let the relay's tasks run until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the relay never got there"
        await asyncio.sleep(0.001)


class Follower:
    """Followers are held weakly: the test keeps this one."""


async def relaying(
    monkeypatch: pytest.MonkeyPatch, deliver: Callable[[object, dict], Awaitable[None]]
) -> tuple[TickRelay, Follower]:
    monkeypatch.setattr(tick_fanout, "deliver_tick", deliver)
    relay, follower = TickRelay(), Follower()
    await relay.follow(follower)  # type: ignore[arg-type]
    return relay, follower


async def test_a_slow_pass_skips_to_the_newest_tick_instead_of_falling_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[int] = []
    passing, finish_pass = asyncio.Event(), asyncio.Event()

    async def slow_delivery(conn: object, event: dict) -> None:
        delivered.append(event["seq"])
        passing.set()
        await finish_pass.wait()  # the pass over the followers lasts until the test lets it end

    relay, _follower = await relaying(monkeypatch, slow_delivery)
    layer = get_channel_layer()
    await layer.group_send(ticks_group(), tick(1))
    await asyncio.wait_for(passing.wait(), 10)
    before = skipped()
    for seq in range(2, 21):  # nineteen ticks arrive while the pass for the first one runs
        await layer.group_send(ticks_group(), tick(seq))
    await eventually(lambda: skipped() - before == 18)  # each of 2..19 replaced by the next
    finish_pass.set()
    await eventually(lambda: delivered[-1] == 20)
    relay._task.cancel()  # type: ignore[union-attr]

    assert delivered == [1, 20]


async def test_ticks_that_arrive_together_are_all_relayed_while_no_pass_is_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivered: list[int] = []

    async def quick_delivery(conn: object, event: dict) -> None:
        delivered.append(event["seq"])

    relay, _follower = await relaying(monkeypatch, quick_delivery)
    layer = get_channel_layer()
    for seq in range(1, 6):  # queued at once, as one batch from Redis hands them over
        await layer.group_send(ticks_group(), tick(seq))
    await eventually(lambda: 5 in delivered)
    relay._task.cancel()  # type: ignore[union-attr]

    assert delivered == [1, 2, 3, 4, 5]
