"""POST /api/auth/token/: the HTTP bootstrap that gives a frontend its token and device ID."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from sessions_app.api.views import LoginUsernameThrottle
from sessions_app.models import AccessToken, Device
from sessions_app.tokens import hash_access_token
from tests.support.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


def post_token(body: object) -> tuple[int, dict]:
    response = APIClient().post("/api/auth/token/", body, format="json")
    return response.status_code, response.json()


def test_a_token_and_a_generated_device_id_are_returned_for_good_credentials() -> None:
    user = make_user()
    status, body = post_token({"username": user.username, "password": PASSWORD})
    assert status == 201
    assert set(body) == {"token", "deviceId", "expiresAt"}
    device = Device.objects.get(device_id=body["deviceId"])
    assert device.user == user
    token = AccessToken.objects.get(device=device)
    assert token.key_hash == hash_access_token(body["token"]) and body["token"] not in token.key_hash
    assert abs(body["expiresAt"] - token.expires_at.timestamp() * 1000) < 1
    assert token.expires_at > timezone.now()


def test_a_given_device_id_is_registered_to_the_user_and_reused() -> None:
    user = make_user()
    first = post_token({"username": user.username, "password": PASSWORD, "deviceId": "laptop-1"})[1]
    second = post_token({"username": user.username, "password": PASSWORD, "deviceId": "laptop-1"})[1]
    assert first["deviceId"] == second["deviceId"] == "laptop-1"
    assert Device.objects.filter(user=user).count() == 1
    assert first["token"] != second["token"]


def test_wrong_credentials_get_401_with_the_standard_error_body() -> None:
    user = make_user()
    status, body = post_token({"username": user.username, "password": "wrong"})
    assert status == 401
    assert body["type"] == "error" and body["code"] == "invalid_credentials" and body["requestId"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "x"},
        {"username": 1, "password": "p"},
        {"username": "x", "password": "p", "deviceId": "bad id!"},
    ],
)
def test_a_malformed_body_gets_400_with_details(body: dict) -> None:
    status, error = post_token(body)
    assert status == 400 and error["code"] == "invalid_request" and error["details"]


def test_a_non_json_body_gets_400_with_the_standard_error() -> None:
    response = APIClient().post("/api/auth/token/", "not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_a_device_id_of_another_user_is_refused_with_409() -> None:
    owner, intruder = make_user(), make_user()
    post_token({"username": owner.username, "password": PASSWORD, "deviceId": "shared-id"})
    status, body = post_token({"username": intruder.username, "password": PASSWORD, "deviceId": "shared-id"})
    assert status == 409 and body["code"] == "device_taken"


def test_login_attempts_on_one_account_are_throttled_with_retry_after() -> None:
    user = make_user()
    statuses = [
        APIClient().post("/api/auth/token/", {"username": user.username, "password": "x"}, format="json")
        for _ in range(6)
    ]
    assert [r.status_code for r in statuses[:5]] == [401] * 5
    assert statuses[5].status_code == 429
    assert statuses[5].json()["code"] == "throttled" and int(statuses[5]["Retry-After"]) > 0


def test_a_revoked_token_no_longer_authenticates_http_requests() -> None:
    user = make_user()
    body = post_token({"username": user.username, "password": PASSWORD})[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert client.get("/api/devices/").status_code == 200
    assert client.post("/api/auth/token/revoke/").status_code == 204
    response = client.get("/api/devices/")
    assert response.status_code == 401 and response.json()["code"] == "token_revoked"


def test_requests_without_a_token_get_401_authentication_required() -> None:
    response = APIClient().get("/api/devices/")
    assert response.status_code == 401 and response.json()["code"] == "authentication_required"


def test_a_username_with_a_lone_surrogate_is_the_standard_invalid_request_not_a_crash() -> None:
    client = APIClient()
    response = client.post(
        "/api/auth/token/", data='{"username": "\\ud800", "password": "x"}', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["details"][0]["field"]) == ("invalid_request", "username")


def test_a_username_with_a_nul_character_is_the_standard_invalid_request_not_a_database_error() -> None:
    # PostgreSQL's text cannot hold U+0000: looked up, it was answered 503 service_unavailable.
    response = APIClient().post(
        "/api/auth/token/", data='{"username": "a\\u0000b", "password": "x"}', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["details"][0]["field"]) == ("invalid_request", "username")


def test_the_per_username_throttle_keys_no_cache_entry_on_a_string_that_has_no_utf8_form() -> None:
    def key_for(body: str) -> str | None:
        raw = APIRequestFactory().post("/api/auth/token/", data=body, content_type="application/json")
        return LoginUsernameThrottle().get_cache_key(Request(raw, parsers=[JSONParser()]), APIView())

    assert key_for('{"username": "\\ud800"}') is None  # a Redis cache could not encode the key
    assert key_for('{"username": "Ann"}') == "throttle_login_user_ann"
