"""A worker's channels keep being read when the channel layer fails for a while (simulator_app.worker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessions_app.realtime.memory_layer import EmbeddedChannelLayer
from simulator_app import worker


class LayerFailingFirst(EmbeddedChannelLayer):
    """The embedded layer, whose first `failures` receives raise as a lost Redis connection does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the channel layer is down")
        return await super().receive(channel)


@pytest.mark.parametrize("failures", [0, 1, 3])
async def test_listen_hands_on_every_message_though_the_layer_failed_first(
    monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    layer = LayerFailingFirst(failures)
    monkeypatch.setattr(worker, "get_channel_layer", lambda: layer)
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(message: dict[str, Any]) -> None:
        await handled.put(message)

    listening = asyncio.create_task(worker.listen("worker.test", handle))
    try:
        for n in range(3):
            await layer.send("worker.test", {"type": "test.message", "n": n})
        got = [await asyncio.wait_for(handled.get(), 30) for _ in range(3)]
    finally:
        listening.cancel()
    assert [message["n"] for message in got] == [0, 1, 2]
    assert layer.failures == 0
