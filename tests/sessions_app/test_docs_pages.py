"""The docs a browser shows: Swagger UI from the service's own static files, the WebSocket protocol
page rendered from the AsyncAPI document, and the AsyncAPI document itself."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from sessions_app.api.docs import socket_docs, type_html
from sessions_app.realtime.export import asyncapi, client_messages, close_code_rows, error_code_rows, server_messages
from sessions_app.realtime.message_base import message_type


class Page(HTMLParser):
    """The ids, links and loaded resources of one HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.resources: list[str] = []  # what the browser loads on its own: scripts, styles, icons, images
        self.links: list[str] = []
        self.data: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag in ("script", "img", "iframe") and "src" in values:
            self.resources.append(values["src"])
        if tag == "link" and "href" in values:
            self.resources.append(values["href"])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        self.data.update({name: value for name, value in values.items() if name.startswith("data-")})


def get(client: Client, name: str) -> tuple[int, str, str]:
    response = client.get(reverse(name))
    return response.status_code, response["Content-Type"], response.content.decode()


def test_the_swagger_page_loads_only_static_files_the_service_has_and_points_at_its_schema(client: Client) -> None:
    status, content_type, html = get(client, "api-docs")
    assert status == 200 and content_type.startswith("text/html")
    page = Page(html)
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    assert page.resources, html
    for url in page.resources:
        assert url.startswith(static_url), url  # no CDN, no other host
        # A manifest storage's name carries a content hash: the app's file is the name without it.
        name = re.sub(r"\.[0-9a-f]{12}(\.\w+)$", r"\1", url.removeprefix(static_url))
        assert finders.find(name) is not None, f"{url} is not a static file of any app"
    assert any("swagger-ui-bundle.js" in url for url in page.resources)
    assert page.data["data-schema-url"] == reverse("openapi")


def test_the_asyncapi_document_is_served_as_the_exporter_generates_it(client: Client) -> None:
    status, content_type, body = get(client, "asyncapi")
    assert status == 200 and content_type == "application/json"
    assert json.loads(body) == json.loads(json.dumps(asyncapi()))


def test_the_socket_page_lists_every_message_error_code_and_close_code(client: Client) -> None:
    status, content_type, html = get(client, "socket-docs")
    assert status == 200 and content_type.startswith("text/html")
    page = Page(html)
    for model in (*client_messages(), *server_messages()):
        assert f"message-{message_type(model)}" in page.ids, model
        assert f"schema-{model.__name__}" in page.ids, model
    for row in error_code_rows():
        assert f"code-{row.code}" in page.ids, row
    for close in close_code_rows():
        assert f"close-{close.code}" in page.ids, close
    assert all(url.startswith("/static/") for url in page.resources), page.resources
    assert "<script" not in html


def test_every_link_inside_the_socket_page_has_its_target(client: Client) -> None:
    _, _, html = get(client, "socket-docs")
    page = Page(html)
    anchors = {href[1:] for href in page.links if href.startswith("#")}
    assert anchors and anchors <= page.ids, anchors - page.ids


def test_the_socket_docs_split_the_messages_by_direction_and_pair_requests_with_replies() -> None:
    docs = socket_docs()
    assert [m.type for m in docs.client] == [message_type(m) for m in client_messages()]
    assert sorted(m.type for m in docs.server) == sorted(message_type(m) for m in server_messages())
    by_type = {m.type: m for m in (*docs.client, *docs.server)}
    for model in client_messages():
        expected = message_type(model.reply) if model.reply is not None else None
        assert by_type[message_type(model)].reply == expected
        if expected is not None:
            assert message_type(model) in by_type[expected].replies_to


def test_a_field_shows_whether_it_is_required_as_the_schema_says() -> None:
    docs = socket_docs()
    schemas = asyncapi()["components"]["schemas"]
    for message in (*docs.client, *docs.server):
        required = set(schemas[message.schema.name].get("required", []))
        assert {f.name for f in message.schema.fields if f.required} == required, message.type
        assert [f.name for f in message.schema.fields] == list(schemas[message.schema.name]["properties"])


def test_the_shared_schemas_are_the_ones_messages_refer_to() -> None:
    names = {schema.name for schema in socket_docs().schemas}
    assert {"ErrorCode", "ErrorDetail", "UserOrder"} <= names
    assert "TokenRequest" not in names  # an HTTP body, not on the socket


@pytest.mark.parametrize(
    ("schema", "shown"),
    [
        ({"type": "string"}, "string"),
        ({"type": "string", "format": "date-time"}, "string (date-time)"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "integer | null"),
        ({"const": "heartbeat"}, "<code>&quot;heartbeat&quot;</code>"),
        ({"enum": ["buy", "sell"]}, "<code>&quot;buy&quot;</code> | <code>&quot;sell&quot;</code>"),
        (
            {"type": "array", "items": {"$ref": "#/components/schemas/UserOrder"}},
            'array of <a href="#schema-UserOrder">UserOrder</a>',
        ),
        ({"type": "object", "additionalProperties": {"type": "number"}}, "object of string → number"),
        ({}, "any"),
    ],
)
def test_a_json_schema_reads_as_a_short_type(schema: dict, shown: str) -> None:
    assert type_html(schema) == shown


def test_a_type_from_the_document_is_escaped_not_trusted() -> None:
    assert type_html({"const": "<b>"}) == "<code>&quot;&lt;b&gt;&quot;</code>"


@pytest.mark.parametrize("name", ["api-docs", "socket-docs"])
def test_the_docs_pages_are_public_and_read_only(client: Client, name: str) -> None:
    assert client.get(reverse(name)).status_code == 200  # no login, like /api/schema/
    assert client.post(reverse(name)).status_code == 405


def test_the_console_links_both_docs_pages(client: Client) -> None:
    html = client.get(reverse("console")).content.decode()
    assert f'href="{reverse("api-docs")}"' in html and f'href="{reverse("socket-docs")}"' in html
