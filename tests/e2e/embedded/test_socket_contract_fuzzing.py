"""The socket under a schema-driven fuzzer (issue 24): hypothesis draws frames from the exported JSON
Schema (hypothesis-jsonschema) and sends them over a real socket to a real daphne (embedded defaults).

Schema-valid frames of every client message type (with extra fields and nulls the schema allows) get
their documented reply, or an error whose code the AsyncAPI document lists for the socket. Mutated
frames (a wrong type, a missing required field, a huge or non-ASCII string, a lone surrogate, deep
nesting, a binary frame, text that is not a JSON object, an unknown type) get the standard `error`
with a frame code, naming the field where there is one. Never `internal_error`, never a dropped
connection (a heartbeat after each mutated frame is still acknowledged), nothing at ERROR in the
server's log. Over MessagePack (the `tradesim.msgpack` subprotocol) the same holds: schema-valid
messages packed get their documented answer, and bytes that are not a MessagePack map get a frame
error in MessagePack. Bounded to VALID_EXAMPLES + MUTATED_EXAMPLES + MSGPACK_EXAMPLES frames, a few
seconds on the CI machine.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from sessions_app.realtime.export import asyncapi, client_messages, json_schema
from sessions_app.realtime.message_base import message_type
from tests.support.liveserver import DaphneServer, heartbeat, recv_json, send_json
from tests.support.servers import running_server

VALID_EXAMPLES = 150
MUTATED_EXAMPLES = 250
MSGPACK_EXAMPLES = 100
MAX_MESSAGE_BYTES = 65_536  # WS_MAX_MESSAGE_BYTES's default
SCHEMA = json_schema()
DEFS = SCHEMA["$defs"]
MODELS = {message_type(model): model for model in client_messages()}
CLOSING = {"stop_session"}  # answered, then the session ends: its own test
SOCKET_CODES = {entry["code"] for entry in asyncapi()["components"]["messages"]["error"]["x-error-codes"]}
# A frame the schema allows is never refused as a malformed one.
FRAME_CODES = {
    "invalid_json",
    "invalid_msgpack",
    "binary_not_supported",
    "not_an_object",
    "unknown_type",
    "invalid_message",
}


def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/$defs/{MODELS[kind].__name__}", "$defs": DEFS})


VALIDATORS = {kind: validator(kind) for kind in MODELS}


@dataclass
class Socket:
    """One logged-in connection, opened again (a fresh login) when the protocol closed it."""

    server: DaphneServer
    ws: ClientConnection | None = None
    device_id: str = ""
    sent: int = 0
    held: ExitStack = field(default_factory=ExitStack)
    msgpack: bool = False  # MessagePack frames (the `tradesim.msgpack` subprotocol)

    def open(self) -> ClientConnection:
        if self.ws is None:
            creds = self.server.login("demo", "demo-password")
            subprotocols = ["tradesim.msgpack"] if self.msgpack else None
            connection = self.server.connect(creds["token"], creds["deviceId"], subprotocols=subprotocols)
            self.ws = self.held.enter_context(connection)
            self.device_id = creds["deviceId"]
            assert self.receive(self.ws, 30)["type"] == "connected"
        return self.ws

    def encode(self, message: dict) -> str | bytes:
        return msgpack.packb(message) if self.msgpack else json.dumps(message)

    def receive(self, ws: ClientConnection, timeout: float) -> dict:
        if not self.msgpack:
            return recv_json(ws, timeout=timeout)
        frame = ws.recv(timeout=timeout)
        assert isinstance(frame, bytes), frame  # every frame of a MessagePack connection is binary
        message: dict = msgpack.unpackb(frame)
        return message

    def next_request_id(self) -> str:
        self.sent += 1
        return f"fuzz-{self.sent}"

    def exchange(
        self,
        payload: str | bytes,
        request_id: str | None,
        *,
        heartbeat_reply: bool = False,
        ack_of: float | None = None,
    ) -> dict:
        """Send one frame; return its answer: the message carrying `request_id`, a heartbeat's ack (with
        `ack_of`, the ack of the heartbeat sent with that timestamp), or an uncorrelated error. Pushes
        (prices, snapshots) in between are passed over, and so are earlier heartbeats' acks: a frame
        answered by an error before the heartbeat sent after it leaves that heartbeat's ack unread."""
        ws = self.open()
        ws.send(payload)
        deadline = time.monotonic() + 15
        while True:
            message = self.receive(ws, max(0.1, deadline - time.monotonic()))
            if request_id is not None and message.get("requestId") == request_id:
                return message
            if (
                heartbeat_reply
                and message["type"] == "heartbeat_ack"
                and ack_of in (None, message.get("clientTimestamp"))
            ):
                return message
            if message["type"] == "error" and message.get("requestId") is None:
                return message

    def beat(self) -> dict:
        """A heartbeat; its own ack, or an uncorrelated error that came first."""
        beat = heartbeat(self.device_id)
        return self.exchange(self.encode(beat), None, heartbeat_reply=True, ack_of=beat["timestamp"])

    def still_open(self) -> None:
        ack = self.beat()
        assert ack["type"] == "heartbeat_ack", ack

    def closed(self) -> None:
        self.held.close()
        self.ws = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    # A fuzzer sends faster than a client may: the rate limit has its own tests.
    limits = {"WS_RATE_LIMIT_PER_S": "100000", "WS_RATE_LIMIT_BURST": "100000"}
    with running_server(tmp_path_factory.mktemp("socket-fuzz"), **limits) as running:
        yield running
        errors = [line for line in running.log().splitlines() if re.search(r" (ERROR|CRITICAL) ", line)]
        assert errors == [], "the server logged at ERROR:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def socket(server: DaphneServer) -> Iterator[Socket]:
    connection = Socket(server)
    yield connection
    connection.closed()


@pytest.fixture(scope="module")
def msgpack_socket(server: DaphneServer) -> Iterator[Socket]:
    connection = Socket(server, msgpack=True)
    yield connection
    connection.closed()


@functools.cache
def from_message_schema(kind: str) -> st.SearchStrategy[dict]:
    """Made once, when first drawn from: hypothesis-jsonschema's work on a schema is most of a draw's
    cost, and made at import it cost every pytest-xdist worker seconds collecting a file one runs."""
    return from_schema({"$ref": f"#/$defs/{MODELS[kind].__name__}", "$defs": DEFS})


def valid_messages(kinds: list[str]) -> st.SearchStrategy[dict]:
    return st.one_of([st.deferred(lambda kind=kind: from_message_schema(kind)) for kind in kinds])


ANY_VALID = valid_messages(sorted(MODELS))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
odd_strings = st.one_of(
    st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=60),  # non-ASCII
    st.integers(129, 3_000).map(lambda n: "é" * n),  # longer than any field allows
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=20),  # control characters
)


def is_valid(message: dict) -> bool:
    kind = message.get("type")
    return isinstance(kind, str) and kind in VALIDATORS and VALIDATORS[kind].is_valid(message)


def names_the_field(error: dict, field: str) -> bool:
    return any(d["field"] == field or d["field"].startswith(f"{field}.") for d in error.get("details", []))


def assert_documented_answer(answer: dict, kind: str, frame: str) -> None:
    reply = MODELS[kind].reply
    if answer["type"] == "error":
        assert answer["code"] in SOCKET_CODES and answer["code"] != "internal_error", (frame, answer)
        too_large = len(frame.encode()) > MAX_MESSAGE_BYTES
        assert answer["code"] not in FRAME_CODES or too_large, (frame, answer)
    else:
        assert reply is not None and answer["type"] == message_type(reply), (frame, answer)


FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@settings(FUZZ, max_examples=VALID_EXAMPLES)
@given(
    message=valid_messages(sorted(set(MODELS) - CLOSING)),
    own_device=st.booleans(),
    extra=st.dictionaries(st.text(min_size=1, max_size=8).map("x-".__add__), json_values, max_size=2),
)
def test_every_schema_valid_frame_gets_its_documented_reply_or_a_documented_error(
    socket: Socket, message: dict, own_device: bool, extra: dict
) -> None:
    socket.open()
    kind = message["type"]
    message = {**extra, **message}
    if own_device and "deviceId" in message:
        message["deviceId"] = socket.device_id
    request_id = socket.next_request_id() if "requestId" in MODELS[kind].model_fields else None
    if request_id is not None:
        message["requestId"] = request_id
    assert is_valid(message)
    frame = json.dumps(message)
    try:
        if MODELS[kind].reply is None:  # a type with no reply (market_ack): a heartbeat right after tells
            socket.open().send(frame)
            answer = socket.beat()
            if answer["type"] == "heartbeat_ack":
                return
        else:
            answer = socket.exchange(frame, request_id, heartbeat_reply=kind == "heartbeat")
    except ConnectionClosed as closed:
        # Only an answer that says so closes the socket (session_stopped, session_expired): not this.
        pytest.fail(f"the server closed the socket ({closed}) on {frame!r}")
    assert_documented_answer(answer, kind, frame)
    if answer["type"] == "error" and answer["code"] in {"session_stopped", "session_expired"}:
        socket.closed()  # its close code follows; a new login goes on


@dataclass(frozen=True)
class Mutated:
    payload: str | bytes
    codes: frozenset[str]  # the error codes that may answer it
    field: str | None  # the field its error's details name
    request_id: str | None


MUTATIONS = (
    "wrong_type",
    "missing",
    "odd_string",
    "lone_surrogate",
    "nesting",
    "deep_nesting",
    "huge",
    "binary",
    "not_json",
    "not_an_object",
    "unknown_type",
    "no_type",
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> Mutated:
    message = draw(ANY_VALID)
    kind = message["type"]
    request_id = f"mutant-{draw(st.integers(0, 10**9))}"
    if "requestId" in message:
        message["requestId"] = request_id
    fields = sorted(set(MODELS[kind].model_fields) - {"type", "requestId"})
    required = [f for f in DEFS[MODELS[kind].__name__].get("required", []) if f != "type"]
    correlated = request_id if "requestId" in message else None
    mutation = draw(st.sampled_from(MUTATIONS))
    invalid = frozenset({"invalid_message"})
    if mutation in ("wrong_type", "odd_string", "nesting") and fields:
        field = draw(st.sampled_from(fields))
        if mutation == "wrong_type":
            message[field] = draw(json_values)
        elif mutation == "odd_string":
            message[field] = draw(odd_strings)
        else:
            message[field] = json.loads("[" * 50 + "1" + "]" * 50)
        assume(not is_valid(message))  # a value the schema allows is no mutation
        return Mutated(json.dumps(message), invalid, field, correlated)
    if mutation == "missing" and required:
        field = draw(st.sampled_from(required))
        del message[field]
        return Mutated(json.dumps(message), invalid, field, None if field == "requestId" else correlated)
    if mutation == "lone_surrogate" and fields:
        field = draw(st.sampled_from(fields))
        message[field] = "a" + chr(draw(st.integers(0xD800, 0xDFFF))) + "b"  # json.dumps writes its \\u escape
        return Mutated(json.dumps(message), invalid, field, correlated)
    if mutation == "deep_nesting":  # deeper than the decoder recurses, within the size limit
        text = json.dumps(message)[:-1] + ', "x": ' + "[" * 30_000 + "]" * 30_000 + "}"
        return Mutated(text, frozenset({"invalid_json"}), None, None)
    if mutation == "huge":
        message["x"] = "x" * (MAX_MESSAGE_BYTES + 1)
        return Mutated(json.dumps(message), frozenset({"message_too_large"}), None, None)
    if mutation == "binary":
        return Mutated(draw(st.binary(max_size=64)), frozenset({"binary_not_supported"}), None, None)
    if mutation == "not_json":
        text = draw(st.text(max_size=40))
        try:
            json.loads(text)
        except ValueError:
            return Mutated(text, frozenset({"invalid_json"}), None, None)
        assume(False)
    if mutation == "not_an_object":
        value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return Mutated(json.dumps(value), frozenset({"not_an_object"}), None, None)
    if mutation == "unknown_type":
        message["type"] = draw(st.text(max_size=20).filter(lambda t: t not in MODELS))
        return Mutated(json.dumps(message), frozenset({"unknown_type"}), None, correlated)
    del message["type"]
    return Mutated(json.dumps(message), frozenset({"unknown_type"}), None, correlated)


@settings(FUZZ, max_examples=MUTATED_EXAMPLES)
@given(frame=mutated_frames())
def test_every_mutated_frame_gets_the_standard_error_naming_the_field_and_the_socket_stays(
    socket: Socket, frame: Mutated
) -> None:
    try:
        answer = socket.exchange(frame.payload, frame.request_id)
        assert answer["type"] == "error", (frame, answer)
        assert answer["code"] in frame.codes, (frame, answer)
        assert answer["requestId"] == frame.request_id or answer["requestId"] is None, (frame, answer)
        if frame.field is not None:
            assert names_the_field(answer, frame.field), (frame, answer)
        socket.still_open()
    except ConnectionClosed as closed:
        pytest.fail(f"the server dropped the socket ({closed}) on {frame!r}")


def test_stop_session_is_answered_then_the_socket_closes_with_its_documented_code(socket: Socket) -> None:
    ws = socket.open()
    request_id = socket.next_request_id()
    send_json(ws, {"type": "stop_session", "requestId": request_id, "timestamp": 1, "deviceId": socket.device_id})
    deadline = time.monotonic() + 10
    seen: list[dict] = []
    with pytest.raises(ConnectionClosed):
        while time.monotonic() < deadline:
            seen.append(recv_json(ws, timeout=max(0.1, deadline - time.monotonic())))
    assert any(m["type"] == "session_stopped" and m["requestId"] == request_id for m in seen)
    assert ws.close_code == 4010
    socket.closed()


def packed(value: object) -> bytes:
    """`value` as MessagePack, or b"" when it has an integer MessagePack cannot hold."""
    try:
        frame: bytes = msgpack.packb(value)
    except OverflowError:
        return b""
    return frame


@settings(FUZZ, max_examples=MSGPACK_EXAMPLES)
@given(
    message=valid_messages(sorted(set(MODELS) - CLOSING - {"market_ack"})),
    garbage=st.one_of(
        st.binary(max_size=64),
        json_values.filter(lambda v: not (isinstance(v, dict) and v.get("type") in MODELS)).map(packed).filter(bool),
    ),
)
def test_over_msgpack_a_valid_frame_gets_its_documented_answer_and_garbage_the_standard_error(
    msgpack_socket: Socket, message: dict, garbage: bytes
) -> None:
    socket = msgpack_socket
    socket.open()
    kind = message["type"]
    message = {**message, "deviceId": socket.device_id} if "deviceId" in message else message
    request_id = socket.next_request_id() if "requestId" in MODELS[kind].model_fields else None
    if request_id is not None:
        message["requestId"] = request_id
    frame = packed(message)
    assume(frame)  # MessagePack has no integer beyond 64 bits, which JSON (and so the schema) allows
    try:
        answer = socket.exchange(frame, request_id, heartbeat_reply=kind == "heartbeat")
        assert_documented_answer(answer, kind, json.dumps(message))
        if answer["type"] == "error" and answer["code"] in {"session_stopped", "session_expired"}:
            socket.closed()
            return
        refused = socket.exchange(garbage, None)
        assert refused["type"] == "error" and refused["code"] in FRAME_CODES, (garbage, refused)
        socket.still_open()
    except ConnectionClosed as closed:
        pytest.fail(f"the server closed the socket ({closed}) on {message!r} / {garbage!r}")
