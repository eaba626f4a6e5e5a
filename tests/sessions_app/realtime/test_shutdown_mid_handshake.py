"""A SIGTERM that lands while a handshake is under way: the connection is still told `shutdown` and
closed with 4012 (not dropped when the reactor stops), and the drain waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from sessions_app.realtime.admission import admission
from sessions_app.realtime.process import shutdown_all
from sessions_app.signals import connection_opened
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_admission(settings: Any) -> None:
    """A process admission of the test's own (made afresh when its settings change, and again after)."""
    settings.WS_MAX_HANDSHAKES_IN_FLIGHT = settings.WS_MAX_HANDSHAKES_IN_FLIGHT


async def sigterm_now(sender: object, **kwargs: object) -> None:
    admission().close()


@pytest.fixture
def signal_during_the_handshake() -> Iterator[None]:
    """Close admission (what SIGTERM does first) at the handshake's last step, after `connected` went out."""
    connection_opened.connect(sigterm_now, dispatch_uid="test-sigterm-now")
    yield
    connection_opened.disconnect(dispatch_uid="test-sigterm-now")


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
    drain = asyncio.ensure_future(shutdown_all(reason="server shutting down", grace_s=60))
    for _ in range(5):  # it looks for handshakes every 50 ms: let it look a few times
        await asyncio.sleep(0.05)
    assert not drain.done()

    gate.leave()
    assert await asyncio.wait_for(drain, timeout=10) == 0
