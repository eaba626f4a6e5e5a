"""CORS for the HTTP API (django-cors-headers): a frontend on another origin may call /api/."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from tests.support.liveserver import ROOT, base_env

APP = "https://app.example.com"
ALLOWED = override_settings(CORS_ALLOWED_ORIGINS=[APP], CORS_ALLOWED_ORIGIN_REGEXES=[], CORS_ALLOW_ALL_ORIGINS=False)


def preflight(client: Client, path: str, origin: str, headers: str = "content-type"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def cors_headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.items() if name.lower().startswith("access-control-")}


@ALLOWED
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/ticket/", "/api/market/orders/"])
def test_a_preflight_from_an_allowed_origin_is_answered_with_what_the_api_needs(client: Client, path: str) -> None:
    response = preflight(client, path, APP, headers="authorization,content-type")
    headers = cors_headers(response)

    assert response.status_code == 200
    assert headers["access-control-allow-origin"] == APP
    assert {"authorization", "content-type"} <= set(headers["access-control-allow-headers"].split(", "))
    assert {"GET", "POST"} <= set(headers["access-control-allow-methods"].split(", "))
    assert headers["access-control-max-age"] == "86400"
    assert "access-control-allow-credentials" not in headers  # bearer tokens, no cookies
    assert "origin" in response["Vary"].lower()


@ALLOWED
@pytest.mark.django_db
def test_an_answer_to_an_allowed_origin_is_readable_there_errors_included(client: Client) -> None:
    response = client.post(
        "/api/auth/token/",
        {"username": "nobody", "password": "wrong"},
        content_type="application/json",
        HTTP_ORIGIN=APP,
    )
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Expose-Headers"] == "Retry-After"


@ALLOWED
def test_a_disallowed_origin_gets_no_cors_headers(client: Client) -> None:
    response = preflight(client, "/api/auth/token/", "https://evil.example")
    assert cors_headers(response) == {}


@ALLOWED
def test_the_admin_is_not_open_to_other_origins(client: Client) -> None:
    response = preflight(client, "/admin/login/", APP)
    assert cors_headers(response) == {}


# A subprocess per environment: the settings module derives the CORS settings at import.
DECIDE = """
import json, sys, django
django.setup()
from django.conf import settings
from django.test import Client
from sessions_app.realtime.origin import origin_allowed
client = Client(SERVER_NAME="127.0.0.1")
result = {}
for origin in json.loads(sys.argv[1]):
    response = client.options("/api/auth/token/", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    result[origin] = [origin_allowed(origin), response.headers.get("Access-Control-Allow-Origin")]
print(json.dumps(result))
"""


def decisions(origins: list[str], **env: str) -> dict[str, list]:
    """For each origin: [does the socket accept it, the API's Access-Control-Allow-Origin]."""
    result = subprocess.run(
        [sys.executable, "-c", DECIDE, json.dumps(origins)],
        cwd=ROOT,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "accepted", "refused"),
    [
        (
            {},
            ["http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000"],
            ["http://evil.example", "null"],
        ),
        (
            {"ALLOWED_HOSTS": ".example.com,api.internal,127.0.0.1"},
            ["https://app.example.com", "https://example.com", "https://a.b.example.com:8443", "https://API.INTERNAL"],
            ["https://evilexample.com", "https://api.internal.evil", "http://127.0.0.2"],
        ),
        (
            {"ALLOWED_HOSTS": ".example.com,127.0.0.1", "WS_ALLOWED_ORIGINS": "https://app.example.com/"},
            ["https://app.example.com"],
            ["http://app.example.com", "https://other.example.com"],
        ),
    ],
    ids=["development-hosts", "allowed-hosts-patterns", "socket-origin-list"],
)
def test_unset_the_api_allows_exactly_the_origins_the_socket_accepts(
    env: dict[str, str], accepted: list[str], refused: list[str]
) -> None:
    result = decisions([*accepted, *refused], **env)
    assert {origin: result[origin] for origin in accepted} == {origin: [True, origin] for origin in accepted}
    assert {origin: result[origin] for origin in refused} == {origin: [False, None] for origin in refused}


def test_a_star_for_the_socket_opens_the_api_to_any_origin_without_credentials() -> None:
    result = decisions(["https://anything.example"], WS_ALLOWED_ORIGINS="*")
    assert result["https://anything.example"] == [True, "*"]


def test_cors_allowed_origins_set_on_its_own_overrides_the_socket_default() -> None:
    result = decisions(
        ["https://cdn.example.net", "http://localhost:5173"], CORS_ALLOWED_ORIGINS="https://cdn.example.net"
    )
    assert result["https://cdn.example.net"] == [False, "https://cdn.example.net"]
    assert result["http://localhost:5173"] == [True, None]


@pytest.mark.parametrize("variable", ["CORS_ALLOWED_ORIGINS", "WS_ALLOWED_ORIGINS"])
def test_an_origin_without_a_scheme_stops_the_process(variable: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=base_env(**{variable: "app.example.com"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and f"{variable}='app.example.com'" in result.stderr
