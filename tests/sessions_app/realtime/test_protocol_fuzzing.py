"""Property-based fuzzing of the inbound protocol (hypothesis, from the schema export):
random valid and invalid messages never crash the consumer and always get a reply, and any field
may hold an odd string (a lone surrogate, control characters, a very long one)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from config.asgi import application
from sessions_app.realtime.export import client_messages, json_schema
from sessions_app.realtime.message_base import message_type
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]

SCHEMA = json_schema()
CLOSING_TYPES = {"stop_session"}  # answered, then closed on purpose
SILENT_TYPES = {message_type(model) for model in client_messages() if model.reply is None}  # market_ack


# Built once, when first drawn from (st.deferred): one made afresh inside each draw spent most of a
# second an example resolving its schema, and made at import they cost every pytest-xdist worker
# seconds collecting a file one runs.
# codec=None: free-text fields may hold any code point, lone surrogates included.
valid_messages = st.one_of(
    [
        st.deferred(
            lambda name=model.__name__: from_schema({"$ref": f"#/$defs/{name}", "$defs": SCHEMA["$defs"]}, codec=None)
        )
        for model in client_messages()
        if message_type(model) not in CLOSING_TYPES
    ]
)


# Strings a client can send that a server may choke on when it echoes or stores them. json.dumps
# writes a lone surrogate as its `\\udxxx` escape, as a JavaScript client's JSON.stringify does.
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
odd_strings = st.one_of(
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), lone_surrogates, st.text(max_size=5)),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=40),
    st.text(st.characters(codec=None), min_size=1, max_size=30),
    st.integers(129, 20_000).map(lambda n: "x" * n),
)


def has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


@st.composite
def messages_with_an_odd_field(draw: st.DrawFn) -> dict:
    """A schema-valid message with one of its class's fields (any of them, present or not, the
    requestId too) set to an odd string, or a list holding one."""
    message = draw(valid_messages)
    model = next(m for m in client_messages() if message_type(m) == message["type"])
    field = draw(st.sampled_from(sorted(set(model.model_fields) - {"type"})))
    odd = draw(odd_strings)
    message[field] = draw(st.sampled_from([odd, [odd]]))
    return message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
client_types = st.sampled_from([message_type(m) for m in client_messages()] + ["", "nope"])
invalid_messages = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.fixed_dictionaries(
        {"type": client_types, "requestId": st.one_of(st.text(max_size=10), odd_strings, json_values)},
        optional={"x": json_values},
    ).map(json.dumps),
)


async def exchange(text: str) -> list[dict]:
    issued = await database_sync_to_async(issue_token)()
    device = issued.device.device_id
    communicator = WebsocketCommunicator(application, f"/ws/session/?token={issued.token}&deviceId={device}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connected"
    await communicator.send_input({"type": "websocket.receive", "text": text.replace("__DEVICE__", device)})
    replies: list[dict] = []
    # Then a heartbeat: what came before its ack answered the message (nothing, for a type without a
    # reply that went well), and the ack shows the consumer did not crash on it.
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
        if reply["type"] == "heartbeat_ack" and not (is_heartbeat(text) and not replies):
            break  # the ack of our heartbeat (a fuzzed heartbeat's own ack comes first)
        replies.append(reply)
    await communicator.disconnect()
    return replies


def is_heartbeat(text: str) -> bool:
    try:
        return json.loads(text).get("type") == "heartbeat"
    except (ValueError, AttributeError, RecursionError):
        return False


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(message=valid_messages, own_device=st.booleans())
def test_every_schema_valid_message_gets_a_reply_and_the_connection_lives_on(message: dict, own_device: bool) -> None:
    if own_device:
        message = {**message, "deviceId": "__DEVICE__"}
    replies = async_to_sync(exchange)(json.dumps(message))
    if not replies:  # no reply: only for a type that has none
        assert message["type"] in SILENT_TYPES and not has_lone_surrogate(message), message
        return
    first = replies[0]
    assert first["type"] != "connected"
    if has_lone_surrogate(message):  # valid for the schema, but not Unicode: refused, and said so
        assert (first["type"], first["code"]) == ("error", "invalid_message"), first
        assert "surrogate" in first["details"][0]["problem"]
        return
    if first["type"] == "error":
        assert first["code"] != "internal_error", first
        assert first["code"] not in ("invalid_message", "unknown_type"), first  # the schema said it was valid
    if "requestId" in message and first.get("requestId") is not None:
        assert first["requestId"] == message["requestId"]


@FUZZ
@given(message=messages_with_an_odd_field())
# The fuzz's own find (issue 18), kept so that every run tries it.
@example({"type": "request_session_info", "requestId": "\ud800", "timestamp": 1, "deviceId": "__DEVICE__"})
@example({"type": "request_session_info", "requestId": "\x00\x1b" * 64, "timestamp": 1, "deviceId": "__DEVICE__"})
def test_an_odd_string_in_any_field_gets_the_standard_error_or_a_reply_never_a_crash(message: dict) -> None:
    replies = async_to_sync(exchange)(json.dumps(message))
    if not replies:  # an odd string where any string will do, in a type without a reply
        assert message["type"] in SILENT_TYPES and not has_lone_surrogate(message), message
        return
    first = replies[0]
    assert first["type"] != "connected"
    if first["type"] == "error":
        assert first["code"] != "internal_error", first
        assert set(first) >= {"type", "requestId", "code", "message", "timestamp"}
        sent = message.get("requestId")
        echoable = isinstance(sent, str) and len(sent) <= 128 and not has_lone_surrogate(sent)
        assert first["requestId"] == (sent if echoable else None), first
    if has_lone_surrogate(message):
        assert first["type"] == "error" and first["code"] == "invalid_message", first


@FUZZ
@given(text=invalid_messages)
@example('{"type": "nope", "requestId": "\\udfff", "x\\ud800": "\\ud800"}')
def test_arbitrary_frames_get_the_standard_error_or_a_reply_never_a_crash(text: str) -> None:
    replies = async_to_sync(exchange)(text)
    assert replies, text  # an invalid frame is always answered
    first = replies[0]
    if first["type"] == "error":
        assert first["code"] != "internal_error", first
        assert set(first) >= {"type", "requestId", "code", "message", "timestamp"}
