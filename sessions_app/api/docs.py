"""The protocol documents as pages a browser shows: Swagger UI over /api/schema/ (its files from
drf-spectacular-sidecar, served by the service itself) and the WebSocket protocol rendered from
the AsyncAPI document the exporter writes, so the page cannot say other than the export.

Public, like /api/schema/: they describe the protocol, never an account's data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from sessions_app.api.fallback import read_only
from sessions_app.realtime.export import CloseCodeRow, ErrorCodeRow, asyncapi, close_code_rows, error_code_rows

SCHEMA_PREFIX = "#/components/schemas/"
MESSAGE_PREFIX = "#/channels/session/messages/"
# Shown beside a field's type, in this order.
CONSTRAINTS = (
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("pattern", "pattern"),
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("default", "default"),
)


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: SafeString
    required: bool
    description: str
    constraints: str


@dataclass(frozen=True)
class SchemaDoc:
    name: str
    description: str
    fields: list[FieldDoc]
    type: SafeString | None  # a schema that is not an object (an enum): its values


@dataclass(frozen=True)
class MessageDoc:
    type: str
    schema: SchemaDoc
    correlated: bool  # carries requestId, echoed by the reply
    reply: str | None  # a request's reply
    replies_to: list[str]  # for a reply: the requests it answers


@dataclass(frozen=True)
class SocketDocs:
    title: str
    version: str
    description: str
    address: str
    query: list[FieldDoc]
    client: list[MessageDoc]
    server: list[MessageDoc]
    schemas: list[SchemaDoc]  # the ones messages refer to
    error_codes: list[ErrorCodeRow]
    close_codes: list[CloseCodeRow]


def _ref_name(ref: str, prefix: str) -> str:
    if not ref.startswith(prefix):
        raise ValueError(f"unexpected $ref {ref!r}")
    return ref[len(prefix) :]


def type_html(schema: dict[str, Any]) -> SafeString:
    """A JSON Schema as a short type: `string`, `array of UserOrder`, `"buy" | "sell"`, `integer | null`."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"], SCHEMA_PREFIX)
        return format_html('<a href="#schema-{}">{}</a>', name, name)
    if "const" in schema:
        return format_html("<code>{}</code>", json.dumps(schema["const"]))
    if "enum" in schema:
        return format_html_join(" | ", "<code>{}</code>", ((json.dumps(value),) for value in schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return SafeString(" | ".join(type_html(option) for option in schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return SafeString(" | ".join(type_html({**schema, "type": one}) for one in kind))
    if kind == "array":
        return format_html("array of {}", type_html(schema.get("items", {})))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return format_html("object of string → {}", type_html(schema["additionalProperties"]))
    if kind is None:
        return SafeString("any")
    if "format" in schema:
        return format_html("{} ({})", kind, schema["format"])
    return format_html("{}", kind)


def _constraints(schema: dict[str, Any]) -> str:
    found = [f"{label} {json.dumps(schema[key])}" for key, label in CONSTRAINTS if key in schema]
    for option in schema.get("anyOf", []):  # pydantic puts an optional field's limits on its non-null branch
        found += [f"{label} {json.dumps(option[key])}" for key, label in CONSTRAINTS if key in option]
    return ", ".join(found)


def _schema_doc(name: str, schema: dict[str, Any]) -> SchemaDoc:
    required = set(schema.get("required", []))
    fields = [
        FieldDoc(
            name=field,
            type=type_html(spec),
            required=field in required,
            description=spec.get("description", ""),
            constraints=_constraints(spec),
        )
        for field, spec in schema.get("properties", {}).items()
    ]
    plain = None if "properties" in schema else type_html(schema)
    return SchemaDoc(name=name, description=schema.get("description", ""), fields=fields, type=plain)


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {_ref_name(value["$ref"], SCHEMA_PREFIX)} if "$ref" in value else set()
        for item in value.values():
            found |= _refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value)) if value else set()
    return set()


def socket_docs(document: dict[str, Any] | None = None) -> SocketDocs:
    """The page's content, read from the AsyncAPI document (by default the one export_protocol writes)."""
    document = document if document is not None else asyncapi()
    schemas: dict[str, Any] = document["components"]["schemas"]
    messages: dict[str, Any] = document["components"]["messages"]
    channel = document["channels"]["session"]

    client: list[str] = []
    server: list[str] = []
    reply_of: dict[str, str] = {}
    for operation in document["operations"].values():
        names = [_ref_name(m["$ref"], MESSAGE_PREFIX) for m in operation["messages"]]
        (client if operation["action"] == "receive" else server).extend(names)
        for reply in operation.get("reply", {}).get("messages", []):
            for name in names:
                reply_of[name] = _ref_name(reply["$ref"], MESSAGE_PREFIX)
    # Replies are not operations of their own; list them with the server's messages, in document order.
    server = [name for name in messages if name in set(server) | set(reply_of.values())]

    def message_doc(name: str) -> MessageDoc:
        entry = messages[name]
        schema_name = _ref_name(entry["payload"]["$ref"], SCHEMA_PREFIX)
        return MessageDoc(
            type=name,
            schema=_schema_doc(schema_name, schemas[schema_name]),
            correlated="correlationId" in entry,
            reply=reply_of.get(name),
            replies_to=[request for request, reply in reply_of.items() if reply == name],
        )

    # Every schema a message refers to, and the ones those refer to.
    payloads = {_ref_name(messages[name]["payload"]["$ref"], SCHEMA_PREFIX) for name in messages}
    referred: set[str] = set()
    pending = set().union(*(_refs(schemas[name]) for name in payloads))
    while pending:
        name = pending.pop()
        if name not in referred:
            referred.add(name)
            pending |= _refs(schemas[name])
    query = channel.get("bindings", {}).get("ws", {}).get("query", {})
    info = document["info"]
    return SocketDocs(
        title=info["title"],
        version=info["version"],
        description=info.get("description", ""),
        address=channel["address"],
        query=_schema_doc("query", query).fields,
        client=[message_doc(name) for name in client],
        server=[message_doc(name) for name in server],
        schemas=[_schema_doc(name, schemas[name]) for name in sorted(referred - payloads)],
        error_codes=error_code_rows(),
        close_codes=close_code_rows(),
    )


@read_only
def swagger_ui(request: HttpRequest) -> HttpResponse:
    return render(request, "docs/swagger.html")


@read_only
def socket_page(request: HttpRequest) -> HttpResponse:
    return render(request, "docs/socket.html", {"docs": socket_docs()})
