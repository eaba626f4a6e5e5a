"""Small factories for tests: real rows through the real services."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from sessions_app import services
from sessions_app.models import TradingSession
from sessions_app.services import IssuedToken
from simulator_app import services as simulator_services

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_user(username: str | None = None, *, password: str = PASSWORD, **fields: object) -> AbstractBaseUser:
    username = username or f"trader{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=password, **fields)


def issue_token(
    user: AbstractBaseUser | None = None, *, device_id: str | None = None, ttl_s: int | None = None
) -> IssuedToken:
    return services.token_issue(user=user or make_user(), device_id=device_id, ttl_s=ttl_s)


def make_session(user: AbstractBaseUser | None = None) -> TradingSession:
    """An active session of a new device of `user` (a new user by default)."""
    issued = issue_token(user)
    return services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk).session


def make_worker(worker_id: str | None = None) -> str:
    """A registered, alive simulator worker (only its database row: tests drive the lease protocol)."""
    worker_id = worker_id or f"test-worker-{next(_counter)}"
    simulator_services.worker_register(
        worker_id=worker_id, hostname="test-host", pid=1, runner="worker", channel_name=f"test.{worker_id}"
    )
    return worker_id
