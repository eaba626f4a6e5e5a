"""POST /api/auth/ticket/: a short-lived single-use ticket for the socket, for a Bearer token only."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from sessions_app.realtime.message_base import now_ms
from tests.support.factories import issue_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


def client_of(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_ticket_names_the_tokens_device_and_expires_in_seconds() -> None:
    issued = issue_token()
    response = client_of(issued.token).post("/api/auth/ticket/")
    body = response.json()
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    assert set(body) == {"ticket", "deviceId", "expiresAt"}
    assert body["deviceId"] == issued.device.device_id and body["ticket"] != issued.token
    assert abs(body["expiresAt"] - (now_ms() + settings.WS_TICKET_TTL_S * 1000)) < 2000
    assert client_of(issued.token).post("/api/auth/ticket/").json()["ticket"] != body["ticket"]


def test_without_a_bearer_token_there_is_no_ticket() -> None:
    response = APIClient().post("/api/auth/ticket/")
    assert response.status_code == 401 and response.json()["code"] == "authentication_required"


def test_a_revoked_token_gets_no_ticket() -> None:
    issued = issue_token()
    client = client_of(issued.token)
    assert client.post("/api/auth/token/revoke/").status_code == 204
    response = client.post("/api/auth/ticket/")
    assert response.status_code == 401 and response.json()["code"] == "token_revoked"


def test_tickets_are_throttled_per_user_with_retry_after() -> None:
    issued = issue_token()
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["ticket"].split("/")[0])
    client = client_of(issued.token)
    statuses = [client.post("/api/auth/ticket/").status_code for _ in range(allowed)]
    refused = client.post("/api/auth/ticket/")
    assert statuses == [201] * allowed
    assert refused.status_code == 429 and refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert client_of(issue_token().token).post("/api/auth/ticket/").status_code == 201  # another user is not
