"""What a client frame must be before a handler sees it: text, within WS_MAX_MESSAGE_BYTES, a JSON
object, with a `type` some app handles, valid against that type's message class. Each failure is
the ProtocolError the consumer answers with (docs/protocol.md, "Errors")."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from django.conf import settings
from pydantic import ValidationError

from sessions_app.realtime.errors import ErrorCode, ErrorDetail, ProtocolError, details_from, lone_surrogate_at
from sessions_app.realtime.message_base import ClientMessage

# Only a `\uD800` to `\uDFFF` escape can put a lone surrogate into decoded JSON (daphne hands over
# valid UTF-8 text; a surrogate itself is matched too, for servers that do not): frames without one skip the walk.
R = TypeVar("R")
_MAY_HOLD_SURROGATES = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def parse(text_data: str | None) -> dict[str, Any]:
    """The frame's JSON object (a binary frame, a frame too large, bad JSON or a non-object refused)."""
    if text_data is None:
        raise ProtocolError(ErrorCode.BINARY_NOT_SUPPORTED)
    limit = settings.WS_MAX_MESSAGE_BYTES
    # A character takes at most 4 bytes in UTF-8: only encode when it could matter.
    if len(text_data) * 4 > limit and len(text_data.encode("utf-8")) > limit:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"message larger than {limit} bytes")
    try:
        data = json.loads(text_data)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON) from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.NOT_AN_OBJECT)
    return data


def route_of(kind: object, routes: Mapping[str, R]) -> R:
    """The route of a client message `type` in `routes`, or `unknown_type`."""
    route = routes.get(kind) if isinstance(kind, str) else None
    if route is None:
        shown = kind[:64] if isinstance(kind, str) else kind if kind is None else type(kind).__name__
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type: {shown!r}")
    return route


def validated(message_class: type[ClientMessage], data: dict[str, Any], text_data: str) -> ClientMessage:
    """The frame as its message class, or `invalid_message` naming each field that is wrong."""
    kind = data["type"]
    if _MAY_HOLD_SURROGATES.search(text_data) is not None:
        # A string with no UTF-8 form reaches no handler, database or reply (I-JSON, RFC 7493 §2.1).
        path = lone_surrogate_at(data)
        if path is not None:
            problem = "not valid Unicode: a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair)"
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"invalid {kind} message",
                details=[ErrorDetail(field=path or "(message)", problem=problem)],
            )
    try:
        return message_class.model_validate(data)
    except ValidationError as error:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"invalid {kind} message", details=details_from(error, whole="(message)")
        ) from None
