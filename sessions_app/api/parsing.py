"""A request read against its declarations: the body, the query and the path parameters, each a
pydantic model that sessions_app.openapi also documents the operation with, so a request the
document allows is one the view accepts, and any other gets `invalid_request` naming the field.

Query and path values arrive as text: the parameter types here read them as exactly as the
document states them (a whole number is ASCII digits, a time RFC 3339 or epoch milliseconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, PlainValidator, ValidationError, WithJsonSchema
from rest_framework.request import Request

from sessions_app.errors import HttpCode
from sessions_app.realtime.errors import ProtocolError, details_from

T = TypeVar("T", bound=BaseModel)

# Epoch milliseconds from 1970 to the end of 9999, the range of Python's datetime.
MAX_EPOCH_MS = 253_402_300_799_999
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_body(model: type[T], request: Request) -> T:
    """The JSON body as `model`; no body at all reads as `{}`, a body that is no object (null, [], 0) is refused."""
    data = request.data
    if not isinstance(data, dict):
        raise ProtocolError(HttpCode.INVALID_REQUEST, "the body must be a JSON object")
    return _validated(model, data, "(body)", "the body does not match the schema")


def parse_query(model: type[T], request: Request) -> T:
    """The query string (the last value of a repeated name) as `model`; unknown names are ignored."""
    return _validated(model, dict(request.query_params.items()), "(query)", "the query does not match the schema")


def parse_path(model: type[T], **values: str) -> T:
    """The URL's path parameters (the URL pattern's names, in the document's camelCase) as `model`."""
    return _validated(model, values, "(path)", "a path parameter does not match the schema")


def _validated(model: type[T], data: dict[str, Any], whole: str, message: str) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ProtocolError(HttpCode.INVALID_REQUEST, message, details=details_from(error, whole=whole)) from None


def _whole_number(value: object) -> object:
    # pydantic's lax int would also take " 7", "7.0", "+7" or "7_0"; the document says digits.
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,20}", value):
        raise ValueError("must be a whole number (digits only)")
    return value


# An integer parameter is `Annotated[int, Field(ge=..., le=...), Digits]`: its bounds before Digits, so that
# they stay the integer's own (in the schema too) rather than checks after a function.
Digits = BeforeValidator(_whole_number)
EpochMsParameter = Annotated[int, Field(ge=0, le=MAX_EPOCH_MS), Digits]

# RFC 3339's date-time (section 5.6) with the year 0001-9999 that datetime can hold, seconds 00-59,
# at most 9 fraction digits and `T`/`Z` in capitals: the format and this pattern say the same.
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE = _YEAR + "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}$"
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9:]{8})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:Z|(?P<sign>[+-])(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2}))"
)


def parse_time(raw: object) -> datetime:
    """Epoch milliseconds or an RFC 3339 date-time, as an aware UTC datetime. A time whose UTC form
    falls outside datetime's years (0001-01-01T00:30:00+01:00) is clamped to the nearest end."""
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,15}", raw) and int(raw) <= MAX_EPOCH_MS:
        return EPOCH + timedelta(milliseconds=int(raw))  # exact, where a float of seconds could round up to 10000
    if not isinstance(raw, str) or not re.fullmatch(DATE_TIME_PATTERN, raw):
        raise ValueError(
            "must be epoch milliseconds (0 to 253402300799999) or an RFC 3339 date-time with its offset "
            "(2026-12-01T17:00:00Z)"
        )
    found = _DATE_TIME.fullmatch(raw)
    assert found is not None  # the pattern above is stricter
    micro = (found["fraction"] or "").ljust(6, "0")[:6]
    try:
        local = datetime.fromisoformat(f"{found['date']}T{found['time']}.{micro}")
    except ValueError:
        raise ValueError("not a date of the calendar") from None
    offset = timedelta(hours=int(found["hours"] or 0), minutes=int(found["minutes"] or 0))
    if found["sign"] == "-":
        offset = -offset
    try:
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except OverflowError:
        return (datetime.min if offset > timedelta(0) else datetime.max).replace(tzinfo=UTC)


# A window's end (`from`, `to`): what parse_time reads, as the document states it.
TimeParameter = Annotated[
    datetime,
    PlainValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_MS},
                {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
            ]
        }
    ),
]
