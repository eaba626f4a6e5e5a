"""Small factories for tests: real rows through the real services."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from sessions_app import services
from sessions_app.services import IssuedToken

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_user(username: str | None = None, *, password: str = PASSWORD, **fields: object) -> AbstractBaseUser:
    username = username or f"trader{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=password, **fields)


def issue_token(
    user: AbstractBaseUser | None = None, *, device_id: str | None = None, ttl_s: int | None = None
) -> IssuedToken:
    return services.token_issue(user=user or make_user(), device_id=device_id, ttl_s=ttl_s)
