"""The standard error never fails on what it echoes: whatever a client sent, it serialises."""

from __future__ import annotations

import json

from sessions_app.realtime.errors import ErrorCode, ErrorDetail, ProtocolError, lone_surrogate_at


def test_an_error_echoing_lone_surrogates_serialises_as_valid_utf8() -> None:
    error = ProtocolError(
        ErrorCode.INVALID_MESSAGE,
        "unknown symbol \ud800",
        request_id="\udfff",
        details=[ErrorDetail(field="symbols.\ud800", problem="bad \udc00")],
    )
    text = error.to_message().to_json()
    body = json.loads(text.encode("utf-8"))
    assert body["requestId"] is None
    assert body["message"] == "unknown symbol \ufffd"
    assert body["details"] == [{"field": "symbols.\ufffd", "problem": "bad \ufffd"}]
    assert error.to_message().to_dict()["requestId"] is None  # the HTTP body's form too


def test_an_error_echoes_a_usable_request_id_as_sent_and_drops_an_overlong_one() -> None:
    odd = '\x00\x1b\u2028"\\'
    assert json.loads(ProtocolError(ErrorCode.RATE_LIMITED, request_id=odd).to_message().to_json())["requestId"] == odd
    assert ProtocolError(ErrorCode.RATE_LIMITED, request_id="x" * 129).to_message().requestId is None


def test_an_errors_quoted_text_is_bounded() -> None:
    message = ProtocolError(ErrorCode.UNKNOWN_TYPE, "x" * 100_000).to_message()
    assert len(message.message) == 1024 and message.message.endswith("\u2026")


def test_the_first_lone_surrogate_is_found_in_values_keys_and_lists() -> None:
    assert lone_surrogate_at({"a": "ok", "b": [1, "\U0001f600"]}) is None
    assert lone_surrogate_at({"a": {"b": ["ok", "x\ud800"]}}) == "a.b.1"
    assert lone_surrogate_at({"a": {"\udc00": 1}}) == "a.\udc00"
    assert lone_surrogate_at("\ud800") == ""
