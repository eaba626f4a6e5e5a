"""A SIGTERM that lands while a handshake is under way: the connection is still told `shutdown` and
closed with 4012 (not dropped when the reactor stops), and the drain waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from sessions_app.realtime import registry
from sessions_app.realtime.admission import admission, reset_admission
from sessions_app.realtime.live import live_connections
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_admission() -> Iterator[None]:
    reset_admission()
    yield
    reset_admission()


@pytest.fixture
def signal_during_the_handshake() -> Iterator[None]:
    """Close admission (what SIGTERM does first) at the handshake's last step, after `connected` went out."""

    async def sigterm_now(conn: object) -> None:
        admission().close()

    registry.connected.hooks.append(sigterm_now)
    yield
    registry.connected.hooks.remove(sigterm_now)


async def test_a_handshake_caught_by_the_signal_is_told_to_go_with_the_shutdown_close_code(
    signal_during_the_handshake: None,
) -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator = WebsocketCommunicator(
        application, f"/ws/session/?token={issued.token}&deviceId={issued.device.device_id}"
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connected"

    told = await communicator.receive_json_from()
    assert told["type"] == "shutdown" and told["reconnectAfterMs"] >= 0
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4012}
    await communicator.disconnect()


async def test_the_drain_waits_for_a_handshake_still_under_way() -> None:
    gate = admission()
    assert gate.enter()  # a handshake has entered and not finished
    drain = asyncio.ensure_future(live_connections.shutdown_all(reason="server shutting down", grace_s=5))
    await asyncio.sleep(0.3)
    assert not drain.done()

    gate.leave()
    assert await asyncio.wait_for(drain, timeout=2) == 0
