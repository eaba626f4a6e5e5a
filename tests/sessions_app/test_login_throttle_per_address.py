"""Login attempts from one client address are throttled whatever the username, and a client cannot
escape that by sending its own X-Forwarded-For (daphne's --proxy-headers sets the address behind a proxy)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ALLOWED = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


def attempt(n: int, address: str, **headers: str) -> int:
    body = {"username": f"guess-{n}", "password": "wrong"}  # a new username each time
    return APIClient().post("/api/auth/token/", body, format="json", REMOTE_ADDR=address, **headers).status_code


def test_attempts_from_one_address_are_throttled_across_usernames() -> None:
    statuses = [attempt(n, "198.51.100.1") for n in range(ALLOWED + 1)]
    assert statuses == [401] * ALLOWED + [429]
    assert attempt(ALLOWED + 1, "198.51.100.2") == 401  # another address is not


def test_a_forged_x_forwarded_for_does_not_reset_the_count() -> None:
    statuses = [attempt(n, "198.51.100.1", HTTP_X_FORWARDED_FOR=f"10.9.0.{n}") for n in range(ALLOWED + 1)]
    assert statuses[-1] == 429
