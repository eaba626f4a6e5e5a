"""The Python client's message types are generated from the JSON Schema, like protocol.d.ts."""

from __future__ import annotations

import typing

import tradesim.protocol as generated

from sessions_app.realtime.export import client_messages, json_schema, server_messages
from sessions_app.realtime.message_base import message_type
from sessions_app.realtime.pythontypes import python_types


def test_every_message_type_has_its_typed_dict_by_its_type() -> None:
    assert list(generated.SERVER_MESSAGES) == [message_type(m) for m in server_messages()]
    assert list(generated.CLIENT_MESSAGES) == [message_type(m) for m in client_messages()]
    assert set(typing.get_args(generated.ServerMessageType)) == set(generated.SERVER_MESSAGES)
    assert generated.SERVER_MESSAGES["exchange_data_status"] is generated.ExchangeDataStatus


def test_optional_fields_are_not_required_and_the_rest_are() -> None:
    error = generated.ErrorMessage
    assert {"type", "requestId", "code", "message", "timestamp"} <= error.__required_keys__
    assert {"details", "retryAfterMs"} <= error.__optional_keys__
    assert "limitPrice" in generated.PlaceOrder.__optional_keys__


def test_the_generator_is_deterministic() -> None:
    assert python_types(json_schema()) == python_types(json_schema())
