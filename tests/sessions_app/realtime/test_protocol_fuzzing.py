"""Property-based fuzzing of the inbound protocol (hypothesis, from the schema export):
random valid and invalid messages never crash the consumer and always get a reply."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from config.asgi import application
from sessions_app.realtime.export import client_messages, json_schema
from sessions_app.realtime.schema import message_type
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]

SCHEMA = json_schema()
CLOSING_TYPES = {"stop_session"}  # answered, then closed on purpose


def valid_messages() -> st.SearchStrategy[dict]:
    options = [
        from_schema({"$ref": f"#/$defs/{model.__name__}", "$defs": SCHEMA["$defs"]})
        for model in client_messages()
        if message_type(model) not in CLOSING_TYPES
    ]
    return st.one_of(options)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
client_types = st.sampled_from([message_type(m) for m in client_messages()] + ["", "nope"])
invalid_messages = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.fixed_dictionaries({"type": client_types, "requestId": st.text(max_size=10)}, optional={"x": json_values}).map(
        json.dumps
    ),
)


async def exchange(text: str) -> list[dict]:
    issued = await database_sync_to_async(issue_token)()
    device = issued.device.device_id
    communicator = WebsocketCommunicator(application, f"/ws/session/?token={issued.token}&deviceId={device}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connected"
    await communicator.send_input({"type": "websocket.receive", "text": text.replace("__DEVICE__", device)})
    replies = [await communicator.receive_json_from(timeout=5)]
    # Still alive and answering: the consumer did not crash on the message.
    await communicator.send_json_to(
        {
            "type": "heartbeat",
            "timestamp": 1,
            "deviceId": device,
            "connectionQuality": "good",
            "sessionStatus": "active",
            "simulatorStatus": "stopped",
        }
    )
    while True:
        reply = await communicator.receive_json_from(timeout=5)
        if reply["type"] == "heartbeat_ack":
            break
        replies.append(reply)
    await communicator.disconnect()
    return replies


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(message=valid_messages(), own_device=st.booleans())
def test_every_schema_valid_message_gets_a_reply_and_the_connection_lives_on(message: dict, own_device: bool) -> None:
    if own_device:
        message = {**message, "deviceId": "__DEVICE__"}
    replies = async_to_sync(exchange)(json.dumps(message))
    first = replies[0]
    assert first["type"] != "connected"
    if first["type"] == "error":
        assert first["code"] != "internal_error", first
        assert first["code"] not in ("invalid_message", "unknown_type"), first  # the schema said it was valid
    if "requestId" in message and first.get("requestId") is not None:
        assert first["requestId"] == message["requestId"]


@FUZZ
@given(text=invalid_messages)
def test_arbitrary_frames_get_the_standard_error_or_a_reply_never_a_crash(text: str) -> None:
    replies = async_to_sync(exchange)(text)
    first = replies[0]
    if first["type"] == "error":
        assert first["code"] != "internal_error", first
        assert set(first) >= {"type", "requestId", "code", "message", "timestamp"}
