"""Building blocks of every message family: the base classes, the shared field types, time.

Field names are the wire names, camelCase, so each class reads exactly like the
protocol. Client messages are validated strictly (no "1" for 1, no true for a
number); unknown extra fields are ignored so older servers accept newer clients.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# On a client's integer (`Annotated[int, Field(...), WHOLE]`): JSON Schema's `integer` is any number
# without a fraction, so 5.0 is 5 (a fuzzer's valid 1994.0 was refused); "5", true and 5.5 stay
# refused, as strict validation has it.
WHOLE = BeforeValidator(_whole)
EpochMs = Annotated[int, WHOLE, "epoch milliseconds"]
# PostgreSQL's text cannot hold U+0000: a string the service stores or looks up refuses it, and its
# schema says so (a fuzzer's username with one was answered 503 `service_unavailable`).
WITHOUT_NUL = r"^[^\x00]*$"

T = TypeVar("T")


def _without_null(schema: dict[str, Any]) -> None:
    # null is kept out of the schema: the `{"type": "null"}` branch goes, and so does a `"default": null`
    # that would contradict the field's own type.
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
    if "default" in schema and schema["default"] is None:
        del schema["default"]


# An optional field that is absent when unset (`x: Omittable[int] = None`): a server message leaves it out,
# so its schema shows only X, with no default to contradict it; a client's null reads as absent, which
# InputModel's schemas state. Validated as X or None (not as a union), so an error names just the field.
Omittable = Annotated[T | None, Field(json_schema_extra=_without_null)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def optional_epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_ms(moment)


def _nullable_omittables(schema: dict[str, Any], model: type[BaseModel]) -> None:
    # What a client sends may carry null for an `Omittable` field (read as absent): its schema says so.
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        spec = properties.get(field.alias or name)
        if spec is not None and field.json_schema_extra is _without_null:
            title = spec.pop("title", None)
            properties[field.alias or name] = {"anyOf": [spec, {"type": "null"}], **({"title": title} if title else {})}


class InputModel(BaseModel):
    """What a client sends (a message, an HTTP body): strict types, unknown fields ignored, and an
    `Omittable` field given, null or left out (null reads as absent, and the schema says so)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, json_schema_extra=_nullable_omittables)


class ClientMessage(InputModel):
    """A message the frontend sends. Subclasses set `type` to a Literal."""

    # Client messages that answer with a reply name it here (used by the AsyncAPI export).
    reply: ClassVar[type[ServerMessage] | None] = None
    # An acknowledgement (cheap, one per tick or bar): counted in its own larger budget (WS_ACK_RATE_PER_S).
    acknowledgement: ClassVar[bool] = False


class ServerMessage(BaseModel):
    """A message the server sends. Its `Omittable[X]` fields listed in omit_when_none are left out when None."""

    model_config = ConfigDict(extra="forbid")
    omit_when_none: ClassVar[frozenset[str]] = frozenset()
    if TYPE_CHECKING:
        # Each message class declares its wire `type` as a Literal field; this tells mypy every one has it.
        type: str

    def to_json(self) -> str:
        if self.omit_when_none:
            skip = {name for name in self.omit_when_none if getattr(self, name) is None}
            return self.model_dump_json(exclude=skip)
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        skip = {name for name in self.omit_when_none if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=skip)


class StreamMessage(ServerMessage):
    """A push numbered in the session's stream (sessions_app.realtime.session_stream).

    The stream adds `sessionSeq` and `sessionEpoch` when it sends the message; a client keeps
    the last pair it applied and sends it with `reconnect` to get what it missed.
    """

    sessionSeq: Omittable[int] = None
    sessionEpoch: Omittable[str] = None

    omit_when_none = frozenset({"sessionSeq", "sessionEpoch"})


def message_type(message_class: type[BaseModel]) -> str:
    """The wire `type` of a message class (the Literal its `type` field is declared with)."""
    literal: str
    (literal,) = get_args(message_class.model_fields["type"].annotation)
    return literal
