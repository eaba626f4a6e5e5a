"""POST /api/devices/{deviceId}/invalidate/: own devices only, and the device's tokens stop working."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sessions_app.models import AccessToken, SessionStatus
from sessions_app.services import session_attach
from tests.support.factories import issue_token, make_user

pytestmark = pytest.mark.django_db


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_user_invalidates_their_other_device_and_its_session_stops() -> None:
    user = make_user()
    phone = issue_token(user, device_id="phone")
    laptop = issue_token(user, device_id="laptop")
    session = session_attach(user_id=user.pk, device_pk=phone.device.pk).session
    response = client_for(laptop.token).post("/api/devices/phone/invalidate/", {"reason": "lost"}, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is False and response.json()["invalidatedReason"] == "lost"
    session.refresh_from_db()
    assert session.status == SessionStatus.STOPPED and session.end_reason == "device invalidated"
    assert AccessToken.objects.get(device=phone.device).revoked_at is not None
    assert client_for(phone.token).get("/api/devices/").json()["code"] == "device_invalidated"
    assert client_for(laptop.token).get("/api/devices/").status_code == 200


def test_another_users_device_is_not_found() -> None:
    mine = issue_token(make_user())
    theirs = issue_token(make_user(), device_id="their-device")
    response = client_for(mine.token).post("/api/devices/their-device/invalidate/", {}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    theirs.device.refresh_from_db()
    assert theirs.device.is_valid


def test_invalidating_twice_is_harmless() -> None:
    user = make_user()
    other = issue_token(user, device_id="tablet")
    me = issue_token(user)
    first = client_for(me.token).post("/api/devices/tablet/invalidate/", format="json")
    second = client_for(me.token).post("/api/devices/tablet/invalidate/", format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["invalidatedAt"] == second.json()["invalidatedAt"]
    assert other.device.device_id == "tablet"


def test_a_reason_with_a_nul_character_is_the_standard_invalid_request_and_the_device_stays_valid() -> None:
    user = make_user()
    phone = issue_token(user, device_id="phone")
    laptop = issue_token(user, device_id="laptop")
    response = client_for(laptop.token).post("/api/devices/phone/invalidate/", {"reason": "lo\x00st"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["details"][0]["field"]) == ("invalid_request", "reason")
    phone.device.refresh_from_db()
    assert phone.device.is_valid
