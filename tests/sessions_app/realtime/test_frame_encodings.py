"""The frame encodings (sessions_app.realtime.encodings): which subprotocol a client's offer gets, and
a message's JSON text as MessagePack and back."""

import json

import msgpack
import pytest
from django.test import override_settings

from sessions_app.realtime.encodings import Encoding, msgpack_of, negotiated, parse_msgpack
from sessions_app.realtime.errors import ErrorCode, ProtocolError


def test_the_first_known_subprotocol_offered_is_chosen_and_no_offer_is_plain_json() -> None:
    assert negotiated([]) == (None, Encoding.JSON)
    assert negotiated(["graphql-ws", "tradesim.msgpack", "tradesim.json"]) == ("tradesim.msgpack", Encoding.MSGPACK)
    assert negotiated(["tradesim.json"]) == ("tradesim.json", Encoding.JSON)
    assert negotiated(["graphql-ws"]) == (None, None)


def test_a_message_packs_as_the_same_object_with_whole_numbers_as_integers() -> None:
    text = json.dumps({"type": "book", "seq": 7, "bids": [[190.25, 300.0]], "change": -0.5, "flag": True})
    unpacked = msgpack.unpackb(msgpack_of(text))
    assert unpacked == json.loads(text)
    assert isinstance(unpacked["bids"][0][1], int) and isinstance(unpacked["bids"][0][0], float)


def test_a_binary_frame_decodes_to_its_object_or_the_documented_error() -> None:
    assert parse_msgpack(msgpack.packb({"type": "heartbeat"})) == {"type": "heartbeat"}
    cases = {
        b"\xc1": ErrorCode.INVALID_MSGPACK,  # never used by MessagePack
        msgpack.packb({"a": 1}) + b"\x01": ErrorCode.INVALID_MSGPACK,  # two values
        b"\xa2\xff\xfe": ErrorCode.INVALID_MSGPACK,  # a string that is not UTF-8
        msgpack.packb([1, 2]): ErrorCode.NOT_AN_OBJECT,
    }
    for frame, code in cases.items():
        with pytest.raises(ProtocolError) as refused:
            parse_msgpack(frame)
        assert refused.value.code == code, frame


@override_settings(WS_MAX_MESSAGE_BYTES=16)
def test_a_binary_frame_over_the_size_limit_is_message_too_large() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_msgpack(msgpack.packb({"type": "x" * 20}))
    assert refused.value.code == ErrorCode.MESSAGE_TOO_LARGE
