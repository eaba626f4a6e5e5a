"""The embedded channel layer sweeps expired entries at most once a second, and still expires them."""

from __future__ import annotations

import asyncio

import pytest

from config import memory_layer
from config.memory_layer import EmbeddedChannelLayer


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
