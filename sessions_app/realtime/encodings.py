"""The frame encodings a client chooses at the handshake, by WebSocket subprotocol (docs/protocol.md,
"Encodings"): JSON text frames (no subprotocol, or `tradesim.json`) or MessagePack binary frames
(`tradesim.msgpack`). Every message is the same object in both: the MessagePack frame is the JSON
message's value, numbers without a fractional part packed as integers (a size of 300.0 as 300),
so one declaration (message_base) serves both. msgpack is the library the channel layer already
uses for its own messages."""

from __future__ import annotations

import functools
import json
from enum import StrEnum
from typing import Any

import msgpack
from django.conf import settings

from sessions_app.realtime.errors import ErrorCode, ProtocolError


class Encoding(StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


SUBPROTOCOLS = {"tradesim.json": Encoding.JSON, "tradesim.msgpack": Encoding.MSGPACK}
CONTENT_TYPES = {Encoding.JSON: "application/json", Encoding.MSGPACK: "application/msgpack"}


def negotiated(offered: list[str]) -> tuple[str | None, Encoding | None]:
    """The subprotocol to accept and the connection's encoding: the first the client offers that the
    server knows; none offered, JSON without a subprotocol; only unknown ones, (None, None)."""
    if not offered:
        return None, Encoding.JSON
    for name in offered:
        if name in SUBPROTOCOLS:
            return name, SUBPROTOCOLS[name]
    return None, None


def _compact_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


# The tick texts every follower of a view shares are packed once; the size bounds the rest.
@functools.lru_cache(maxsize=64)
def msgpack_of(text: str) -> bytes:
    """A message's JSON text as its MessagePack frame."""
    packed: bytes = msgpack.packb(json.loads(text, parse_float=_compact_number))
    return packed


def parse_msgpack(data: bytes) -> dict[str, Any]:
    """A binary frame's object (a frame too large, one that does not decode, or a non-object refused)."""
    limit = settings.WS_MAX_MESSAGE_BYTES
    if len(data) > limit:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"message larger than {limit} bytes")
    try:
        value = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise ProtocolError(ErrorCode.INVALID_MSGPACK) from None
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.NOT_AN_OBJECT)
    return value
