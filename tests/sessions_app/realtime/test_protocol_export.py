"""One contract: the committed schema export matches the code, and every client message is handled."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from sessions_app.errors import HttpCode
from sessions_app.management.commands.export_protocol import EXPORT_DIR, rendered_exports
from sessions_app.realtime.errors import CloseCode, error_codes
from sessions_app.realtime.export import client_messages, server_messages
from sessions_app.realtime.message_base import message_type
from sessions_app.realtime.message_routes import ROUTES

SPEC_MESSAGE_TYPES = {
    "heartbeat",
    "reconnect",
    "request_session_info",
    "stop_session",
    "connected",
    "heartbeat_ack",
    "reconnect_result",
    "session_info",
    "session_stopped",
    "device_id_invalidated",
    "connection_replaced",
    "timeout",
    "shutdown",
    "error",
    "start_simulator",
    "stop_simulator",
    "simulator_started",
    "simulator_stopped",
    "simulator_status_update",
    "exchange_data",
    "exchange_data_status",
}


def test_the_committed_protocol_export_is_current() -> None:
    for name, text in rendered_exports().items():
        committed = (EXPORT_DIR / name).read_text()
        assert committed == text, f"docs/protocol/{name} is stale: run `python manage.py export_protocol`"
    call_command("export_protocol", "--check")


def test_every_client_message_has_exactly_one_handler() -> None:
    assert {message_type(m) for m in client_messages()} == set(ROUTES)


def test_the_export_covers_every_message_type_of_the_spec() -> None:
    exported = {message_type(m) for m in (*client_messages(), *server_messages())}
    assert exported >= SPEC_MESSAGE_TYPES


def test_asyncapi_links_each_request_to_its_reply() -> None:
    document = json.loads((EXPORT_DIR / "asyncapi.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    operation = document["operations"]["receive_request_session_info"]
    assert operation["reply"]["messages"] == [{"$ref": "#/channels/session/messages/session_info"}]
    assert document["components"]["messages"]["session_info"]["correlationId"] == {
        "$ref": "#/components/correlationIds/requestId"
    }


@pytest.mark.parametrize("model", server_messages(), ids=lambda m: m.__name__)
def test_optional_server_fields_are_the_only_ones_not_required(model: type) -> None:
    schema = json.loads((EXPORT_DIR / "protocol.schema.json").read_text())["$defs"][model.__name__]
    assert set(model.model_fields) - set(schema["required"]) == set(model.omit_when_none)


def test_asyncapi_lists_every_close_code_and_every_error_code_the_socket_sends() -> None:
    document = json.loads(rendered_exports()["asyncapi.json"])
    closes = {entry["code"]: entry for entry in document["channels"]["session"]["x-close-codes"]}
    assert set(closes) == {int(code) for code in CloseCode}
    assert closes[4009]["reconnect"] is False and closes[4012]["reconnect"] is True
    listed = {entry["code"]: entry for entry in document["components"]["messages"]["error"]["x-error-codes"]}
    http_only = {code.value for code in HttpCode}
    assert set(listed) == {code.value for code, _ in error_codes()} - http_only
    assert listed["session_stopped"]["closesWith"] == 4010 and listed["invalid_message"]["closesWith"] is None
    # A code closes only with a close code the channel lists.
    assert {entry["closesWith"] for entry in listed.values()} - {None} <= set(closes)
