"""The channel-layer watchdog (sessions_app/realtime/live.py): a process that can no longer read
from Redis sends its clients elsewhere and refuses handshakes, and admits them again once it
reads. In-process against a redis-server of the test's own, stopped and started again; the
namespaced partition test (tests/e2e/test_e2e_netns_layout.py) does the same over a cut link."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from config.asgi import application
from sessions_app.realtime import metrics
from sessions_app.realtime.admission import admission, reset_admission
from sessions_app.realtime.live import live_connections
from tests.support.factories import issue_token
from tests.support.faults import RedisServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.production]

WATCHDOG_MS = 3000


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_layer(own_redis: RedisServer, settings: Any) -> Iterator[None]:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "sessions_app.realtime.redis_layer.RedisLayer",
            "CONFIG": {"hosts": [{"address": own_redis.url, "socket_timeout": 6}], "prefix": "watchdog"},
        }
    }
    settings.CHANNEL_LAYER_WATCHDOG_MS = WATCHDOG_MS
    reset_admission()
    yield
    reset_admission()


async def open_connection() -> tuple[WebsocketCommunicator, dict]:
    issued = await database_sync_to_async(issue_token)()
    communicator = WebsocketCommunicator(
        application, f"/ws/session/?token={issued.token}&deviceId={issued.device.device_id}"
    )
    assert (await communicator.connect())[0]
    return communicator, await communicator.receive_json_from()


async def stalled_for() -> float:
    value = get_channel_layer().stalled_for()
    assert value is not None
    return value


async def test_a_quiet_layer_is_read_every_couple_of_seconds_and_never_trips(redis_layer: None) -> None:
    await stalled_for()  # starts the reader
    worst = 0.0
    deadline = time.monotonic() + WATCHDOG_MS / 1000 + 1
    while time.monotonic() < deadline:
        worst = max(worst, await stalled_for())
        await live_connections.watch_layer()
        await asyncio.sleep(0.2)
    assert worst < WATCHDOG_MS / 1000
    assert not admission().layer_down


async def test_a_process_that_cannot_read_its_layer_sends_clients_away_then_admits_them_once_it_reads(
    redis_layer: None, own_redis: RedisServer
) -> None:
    trips = metrics.CHANNEL_LAYER_WATCHDOG_TRIPS._value.get()
    communicator, connected = await open_connection()
    assert connected["type"] == "connected"
    own_redis.kill()
    deadline = time.monotonic() + 15
    while await stalled_for() < WATCHDOG_MS / 1000:
        assert time.monotonic() < deadline
        await live_connections.watch_layer()  # not yet: nothing happens
        assert not admission().layer_down
        await asyncio.sleep(0.2)
    await live_connections.watch_layer()
    told = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)
    await communicator.disconnect()  # what daphne tells the application once the socket is gone
    let_go = not live_connections.snapshot()  # Redis still down: leaving the groups cannot hold it up
    refused, refusal = await open_connection()
    refused_close = await refused.receive_output(timeout=5)
    own_redis.start()  # on the same port: the reader's next read succeeds
    deadline = time.monotonic() + 20
    while admission().layer_down:
        assert time.monotonic() < deadline, "the watchdog never saw the layer back"
        await asyncio.sleep(0.2)
        await live_connections.watch_layer()
    for _ in range(3):  # pooled connections from before the restart are dead: a client retries
        admitted, welcome = await open_connection()
        await admitted.disconnect()
        if welcome["type"] == "connected":
            break

    assert told["type"] == "shutdown" and "channel layer" in told["reason"]
    assert closed == {"type": "websocket.close", "code": 4012}
    assert (refusal["type"], refusal["code"]) == ("error", "service_unavailable")
    assert refusal["retryAfterMs"] >= 0
    assert refused_close == {"type": "websocket.close", "code": 4013}
    assert welcome["type"] == "connected"
    assert metrics.CHANNEL_LAYER_WATCHDOG_TRIPS._value.get() == trips + 1
    assert let_go
