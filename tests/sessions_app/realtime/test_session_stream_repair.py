"""A connection repairs what the channel layer lost: holes are filled from the stream buffer,
a lost last push is found by the stream check, and a lost stream ends in a resync."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from sessions_app.groups import user_group
from sessions_app.realtime.maintenance import repair_streams
from sessions_app.realtime.publish import push
from sessions_app.realtime.session_stream import stream_store
from simulator_app.messages import SimulatorStatusUpdate
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db(transaction=True)]


def status_update(n: int) -> str:
    return json.dumps(
        {"type": "simulator_status_update", "simulatorId": f"sim-{n}", "simulatorStatus": "stopped",
         "timestamp": n, "sessionId": "s"},
        separators=(",", ":"),
    )  # fmt: skip


async def open_connection() -> tuple[WebsocketCommunicator, dict, int]:
    issued = await database_sync_to_async(issue_token)()
    communicator = WebsocketCommunicator(
        application, f"/ws/session/?token={issued.token}&deviceId={issued.device.device_id}"
    )
    assert (await communicator.connect())[0]
    connected = await communicator.receive_json_from()
    return communicator, connected, int(connected["userId"])


async def push_status(user_id: int, session_id: str, n: int) -> None:
    message = SimulatorStatusUpdate(
        simulatorId=f"sim-{n}", simulatorStatus="stopped", timestamp=n, sessionId="s"
    )  # outside a transaction: sent at once
    await sync_to_async(push)(group=user_group(user_id), message=message, sessions=[session_id])


async def test_a_live_push_after_a_lost_one_comes_after_the_lost_one() -> None:
    communicator, connected, user_id = await open_connection()
    session_id = connected["sessionId"]
    # Numbered but never delivered: what the channel layer does when a channel is full.
    stream_store().append([session_id], status_update(1))
    await push_status(user_id, session_id, 2)
    first, second = await communicator.receive_json_from(), await communicator.receive_json_from()
    assert (first["simulatorId"], first["sessionSeq"]) == ("sim-1", connected["sessionSeq"] + 1)
    assert (second["simulatorId"], second["sessionSeq"]) == ("sim-2", connected["sessionSeq"] + 2)
    assert first["sessionEpoch"] == second["sessionEpoch"] == connected["sessionEpoch"]
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect()


async def test_a_lost_last_push_is_sent_by_the_stream_check() -> None:
    communicator, connected, _ = await open_connection()
    stream_store().append([connected["sessionId"]], status_update(1))
    await repair_streams()  # once: it may still be on its way
    assert await communicator.receive_nothing(0.2)
    await repair_streams()  # twice: it was lost
    repaired = await communicator.receive_json_from()
    assert (repaired["simulatorId"], repaired["sessionSeq"]) == ("sim-1", connected["sessionSeq"] + 1)
    await communicator.disconnect()


async def test_a_stream_that_was_lost_is_resynchronised_with_a_snapshot() -> None:
    communicator, connected, _ = await open_connection()
    stream_store().reset([connected["sessionId"]])  # what a Redis restart does
    await repair_streams()
    resync = await communicator.receive_json_from()
    snapshot = await communicator.receive_json_from()
    assert resync["type"] == "session_resync" and resync["reason"] == "epoch_changed"
    assert resync["recovered"] is False and resync["sessionEpoch"] != connected["sessionEpoch"]
    assert (snapshot["type"], snapshot["reason"]) == ("exchange_data_status", "resync")
    await communicator.disconnect()


async def test_a_duplicate_push_is_not_sent_twice() -> None:
    communicator, connected, user_id = await open_connection()
    session_id = connected["sessionId"]
    await push_status(user_id, session_id, 1)
    delivered = await communicator.receive_json_from()
    # The same numbered event again (a retried send): dropped by the connection.
    event = {
        "type": "session.push", "kind": "simulator_status_update", "payload": status_update(1),
        "positions": {session_id: [delivered["sessionEpoch"], delivered["sessionSeq"]]},
    }  # fmt: skip
    await communicator.send_input(event)
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect()
