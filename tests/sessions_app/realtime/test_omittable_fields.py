"""`Omittable[X]` fields: optional on the wire, left out of what the server sends when unset (no null in
its schemas), and null or absent alike in what a client sends (null in their schemas)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sessions_app.messages import RequestResync
from sessions_app.realtime.errors import ErrorMessage

RESYNC = {"type": "request_resync", "requestId": "r1", "deviceId": "d1"}


def test_a_server_message_leaves_an_unset_omittable_field_out_and_sends_a_set_one() -> None:
    bare = ErrorMessage(requestId=None, code="server_busy", message="busy", timestamp=1)
    assert "retryAfterMs" not in bare.to_dict() and "retryAfterMs" not in bare.to_json()
    timed = ErrorMessage(requestId=None, code="server_busy", message="busy", timestamp=1, retryAfterMs=250)
    assert timed.to_dict()["retryAfterMs"] == 250


def test_a_client_may_leave_an_omittable_field_out_or_send_null_but_not_a_wrong_type() -> None:
    assert RequestResync.model_validate(RESYNC).lastSessionSeq is None
    assert RequestResync.model_validate({**RESYNC, "lastSessionSeq": None}).lastSessionSeq is None
    assert RequestResync.model_validate({**RESYNC, "lastSessionSeq": 7}).lastSessionSeq == 7
    with pytest.raises(ValidationError):
        RequestResync.model_validate({**RESYNC, "lastSessionSeq": "7"})


def test_the_schema_of_an_omittable_field_is_its_type_alone_with_no_default() -> None:
    schema = ErrorMessage.model_json_schema()["properties"]["retryAfterMs"]
    assert schema == {"title": "Retryafterms", "type": "integer"}
    assert "retryAfterMs" not in ErrorMessage.model_json_schema().get("required", [])


def test_the_schema_of_a_clients_omittable_field_allows_the_null_the_server_reads_as_absent() -> None:
    # schemathesis found the document refusing a null the server accepted (issue 24).
    schema = RequestResync.model_json_schema()["properties"]["lastSessionSeq"]
    assert {"type": "null"} in schema["anyOf"]
