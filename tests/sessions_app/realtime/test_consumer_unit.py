"""The session consumer in-process (WebsocketCommunicator): quick checks of its rules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db.backends import utils as db_utils

from config.asgi import application
from sessions_app.groups import user_group
from tests.support.factories import issue_token
from tests.support.liveserver import heartbeat

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def query_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement run by any thread (database_sync_to_async uses a thread pool)."""
    statements: list[str] = []
    original = db_utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):
        statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)
    yield statements


async def open_connection(token: str, device_id: str) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, f"/ws/session/?token={token}&deviceId={device_id}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from()


async def test_heartbeats_do_not_touch_the_database(query_log: list[str]) -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator, connected = await open_connection(issued.token, issued.device.device_id)
    assert connected["type"] == "connected"
    query_log.clear()
    for _ in range(20):
        await communicator.send_json_to(heartbeat(issued.device.device_id))
        assert (await communicator.receive_json_from())["type"] == "heartbeat_ack"
    assert query_log == []
    await communicator.disconnect()


async def test_every_reply_echoes_its_request_id_even_in_errors() -> None:
    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator, _ = await open_connection(issued.token, device_id)
    await communicator.send_json_to(
        {"type": "request_session_info", "requestId": "a", "timestamp": 1, "deviceId": device_id}
    )
    assert (await communicator.receive_json_from())["requestId"] == "a"
    await communicator.send_json_to({"type": "request_session_info", "requestId": "b", "timestamp": 1})
    error = await communicator.receive_json_from()
    assert (error["code"], error["requestId"]) == ("invalid_message", "b")
    await communicator.send_json_to({"type": "stop_session", "requestId": "c", "timestamp": 1, "deviceId": "other"})
    error = await communicator.receive_json_from()
    assert (error["code"], error["requestId"]) == ("device_id_mismatch", "c")
    await communicator.disconnect()


async def test_an_overlong_request_id_is_not_echoed() -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator, _ = await open_connection(issued.token, issued.device.device_id)
    await communicator.send_json_to({"type": "nope", "requestId": "x" * 500})
    error = await communicator.receive_json_from()
    assert error["code"] == "unknown_type" and error["requestId"] is None
    await communicator.disconnect()


async def test_a_lone_surrogate_request_id_gets_the_standard_error_not_internal_error() -> None:
    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator, _ = await open_connection(issued.token, device_id)
    # The JSON text carries the escape itself (json.dumps writes a lone surrogate as `\\ud800`).
    frame = '{"type": "request_session_info", "requestId": "\\ud800", "timestamp": 1, "deviceId": "%s"}'
    await communicator.send_to(text_data=frame % device_id)
    error = await communicator.receive_json_from()
    assert (error["type"], error["code"], error["requestId"]) == ("error", "invalid_message", None)
    assert error["details"][0]["field"] == "requestId"
    await communicator.send_json_to(heartbeat(device_id))
    assert (await communicator.receive_json_from())["type"] == "heartbeat_ack"
    await communicator.disconnect()


async def test_a_lone_surrogate_in_any_field_or_key_is_invalid_and_the_request_id_still_echoed() -> None:
    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator, _ = await open_connection(issued.token, device_id)
    for field, value in [("sessionToken", "\udfff"), ("sessionEpoch", "a\udc00b"), ("x", {"k\ud800": 1})]:
        message = {"type": "reconnect", "requestId": "r1", "timestamp": 1, "deviceId": device_id, field: value}
        await communicator.send_to(text_data=json.dumps(message))
        error = await communicator.receive_json_from()
        assert (error["code"], error["requestId"]) == ("invalid_message", "r1"), error
        assert error["details"][0]["field"].startswith(field), error
    # A surrogate pair is one valid character and goes through.
    await communicator.send_to(
        text_data=json.dumps(
            {"type": "request_session_info", "requestId": "\U0001f600", "timestamp": 1, "deviceId": device_id}
        )
    )
    reply = await communicator.receive_json_from()
    assert (reply["type"], reply["requestId"]) == ("session_info", "\U0001f600")
    await communicator.disconnect()


async def test_a_deeply_nested_frame_is_invalid_json_not_a_crash() -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator, _ = await open_connection(issued.token, issued.device.device_id)
    await communicator.send_to(text_data="[" * 20_000 + "]" * 20_000)
    error = await communicator.receive_json_from()
    assert error["code"] in {"invalid_json", "not_an_object"}
    await communicator.send_json_to(heartbeat(issued.device.device_id))
    assert (await communicator.receive_json_from())["type"] == "heartbeat_ack"
    await communicator.disconnect()


async def test_requests_about_a_deleted_session_answer_session_not_active() -> None:
    from sessions_app.models import TradingSession

    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator, connected = await open_connection(issued.token, device_id)
    await database_sync_to_async(TradingSession.objects.filter(pk=connected["sessionId"]).delete)()
    await communicator.send_json_to({"type": "stop_session", "requestId": "s", "timestamp": 1, "deviceId": device_id})
    error = await communicator.receive_json_from()
    assert (error["type"], error["code"], error["requestId"]) == ("error", "session_not_active", "s")
    await communicator.disconnect()


async def test_a_connection_answers_frames_and_hears_events_on_its_channel() -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator, connected = await open_connection(issued.token, issued.device.device_id)
    await communicator.send_json_to(heartbeat(issued.device.device_id))
    ack = await communicator.receive_json_from()
    replace = {"type": "connection.replace", "generation": 10**6, "sessionId": "x"}
    # Meant for another device of the user: ignored.
    await get_channel_layer().group_send(
        user_group(issued.device.user_id), {**replace, "deviceKey": issued.device.pk + 1}
    )
    await get_channel_layer().group_send(user_group(issued.device.user_id), {**replace, "deviceKey": issued.device.pk})
    replaced = await communicator.receive_json_from()
    await communicator.disconnect()

    assert connected["type"] == "connected" and ack["type"] == "heartbeat_ack"
    assert replaced["type"] == "connection_replaced"


async def test_a_push_for_one_device_reaches_only_that_devices_connection() -> None:
    first = await database_sync_to_async(issue_token)()
    second = await database_sync_to_async(issue_token)(first.device.user)
    mine, _ = await open_connection(first.token, first.device.device_id)
    other, _ = await open_connection(second.token, second.device.device_id)
    notice = json.dumps({"type": "device_id_invalidated", "deviceId": first.device.device_id, "timestamp": 1})
    push = {"type": "session.push", "kind": "device_id_invalidated", "payload": notice, "positions": {}}
    await get_channel_layer().group_send(user_group(first.device.user_id), {**push, "deviceKey": first.device.pk})
    delivered = await mine.receive_json_from()
    # The other device hears nothing of it: its next frame is the answer to its heartbeat.
    await other.send_json_to(heartbeat(second.device.device_id))
    answered = await other.receive_json_from()
    await mine.disconnect()
    await other.disconnect()

    assert delivered["type"] == "device_id_invalidated"
    assert answered["type"] == "heartbeat_ack"


async def test_a_redis_that_does_not_answer_a_request_is_the_retryable_service_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis.exceptions

    from sessions_app import recovery

    async def pool_stayed_busy(*args: object, **kwargs: object) -> None:
        raise redis.exceptions.ConnectionError("No connection available.")

    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator, connected = await open_connection(issued.token, device_id)
    monkeypatch.setattr(recovery, "replay_since", pool_stayed_busy)
    await communicator.send_json_to(
        {
            "type": "reconnect",
            "requestId": "rc",
            "timestamp": 1,
            "deviceId": device_id,
            "sessionToken": connected["sessionToken"],
            "lastSessionSeq": 0,
            "sessionEpoch": connected["sessionEpoch"],
        }
    )
    error = await communicator.receive_json_from()
    assert (error["type"], error["code"], error["requestId"]) == ("error", "service_unavailable", "rc")
    await communicator.disconnect()
