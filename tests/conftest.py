from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.test import override_settings

from tests.liveserver import DaphneServer, base_env, manage

ServerFactory = Callable[..., DaphneServer]
# Tests log in many times a minute; the throttle itself has its own test.
RELAXED_LOGIN_THROTTLE = {"LOGIN_THROTTLE_RATE": "1000/min", "LOGIN_USER_THROTTLE_RATE": "1000/min"}


def _server_factory(directory: Path) -> tuple[ServerFactory, list[DaphneServer]]:
    """Start daphne processes sharing one fresh SQLite database (embedded defaults).

    Keyword arguments become environment variables of the server process; `args`, daphne options.
    """
    started: list[DaphneServer] = []
    database = directory / f"e2e-{uuid.uuid4().hex}.sqlite3"
    prepared = False

    def start(args: tuple[str, ...] = (), **env_overrides: str) -> DaphneServer:
        nonlocal prepared
        env = base_env(DATABASE_URL=f"sqlite:///{database}", **env_overrides)
        if not prepared:
            manage(env, "migrate", "--noinput")
            manage(env, "ensure_demo_user")
            prepared = True
        server = DaphneServer(env=env, args=args).start(directory)
        started.append(server)
        return server

    return start, started


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    start, started = _server_factory(tmp_path)
    yield start
    for server in started:
        server.stop()


@contextmanager
def running_server(directory: Path, **env: str) -> Iterator[DaphneServer]:
    """One daphne process on a fresh database (relaxed login throttle), stopped afterwards."""
    start, started = _server_factory(directory)
    try:
        yield start(**RELAXED_LOGIN_THROTTLE, **env)
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """One server for a whole test module, for tests that need no special settings."""
    with running_server(tmp_path_factory.mktemp("daphne")) as server:
        yield server


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """In-process tests create many users; the production hasher would make up most of their run time."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def default_instruments() -> None:
    """The data migration's instruments and feed row (a transactional test's flush empties every table)."""
    migration = importlib.import_module("market_app.migrations.0002_default_instruments")
    migration.create(django_apps, None)
