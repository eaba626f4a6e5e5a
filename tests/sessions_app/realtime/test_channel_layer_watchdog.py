"""The channel-layer watchdog (sessions_app/realtime/watchdog.py): a process whose probes through the
channel layer stop coming back sends its clients elsewhere and refuses handshakes, and admits them
again once a probe returns. In-process, on Redis pub/sub (the production layer) against a
redis-server of the test's own, stopped and started again; the namespaced partition test does the
same over a cut link."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from config.asgi import application
from sessions_app.realtime.admission import admission
from sessions_app.realtime.consumer import live_connections
from sessions_app.realtime.watchdog import Watchdog
from tests.support.factories import issue_token
from tests.support.faults import RedisServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.production]

BOUND_S = 2.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def watchdog(own_redis: RedisServer, settings: Any) -> AsyncIterator[Watchdog]:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "sessions_app.realtime.redis_layer.RedisPubSubLayer",
            "CONFIG": {"shards": [{"url": own_redis.url}], "prefix": "watchdog", "timeout": 6},
        }
    }
    dog = Watchdog(BOUND_S)
    running = asyncio.ensure_future(dog.run())
    try:
        yield dog
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def watchdog_trips() -> float:
    return REGISTRY.get_sample_value("channel_layer_watchdog_trips_total") or 0.0


async def open_connection() -> tuple[WebsocketCommunicator, dict]:
    issued = await database_sync_to_async(issue_token)()
    communicator = WebsocketCommunicator(
        application, f"/ws/session/?token={issued.token}&deviceId={issued.device.device_id}"
    )
    assert (await communicator.connect())[0]
    return communicator, await communicator.receive_json_from()


async def until(condition: Any, *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        await asyncio.sleep(0.05)


async def test_the_probes_of_a_healthy_layer_come_back_and_it_never_trips(watchdog: Watchdog) -> None:
    for _ in range(3):
        last = watchdog.heard
        await until(lambda last=last: (watchdog.heard or 0) > (last or 0), within_s=10, what="a probe came back")

    assert not admission().layer_down


async def test_a_process_cut_off_from_its_layer_sends_clients_away_then_admits_them_once_probes_return(
    watchdog: Watchdog, own_redis: RedisServer
) -> None:
    trips = watchdog_trips()
    communicator, connected = await open_connection()
    assert connected["type"] == "connected"
    own_redis.kill()
    await until(lambda: admission().layer_down, within_s=15, what="the watchdog tripped")
    told = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)
    await communicator.disconnect()  # what daphne tells the application once the socket is gone
    let_go = not live_connections  # Redis still down: leaving the groups cannot hold it up
    refused, refusal = await open_connection()
    refused_close = await refused.receive_output(timeout=5)
    own_redis.start()  # on the same port: the layer reconnects and the next probe comes back
    await until(lambda: not admission().layer_down, within_s=20, what="the watchdog saw the layer back")
    admitted, welcome = await open_connection()
    await admitted.disconnect()

    assert told["type"] == "shutdown" and "channel layer" in told["reason"]
    assert closed == {"type": "websocket.close", "code": 4012}
    assert (refusal["type"], refusal["code"]) == ("error", "service_unavailable")
    assert refusal["retryAfterMs"] >= 0
    assert refused_close == {"type": "websocket.close", "code": 4013}
    assert welcome["type"] == "connected"
    assert watchdog_trips() == trips + 1
    assert let_go
