"""Production mode for tests: a fresh PostgreSQL database and a private Redis key prefix.

Under CI=true an unreachable PostgreSQL or Redis fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return None
    except OSError as error:
        return f"{parts.scheme} at {parts.hostname}:{parts.port} unreachable ({error})"


def require_services() -> None:
    for url in (POSTGRES_URL, REDIS_URL):
        problem = _reachable(url)
        if problem:
            if IN_CI:
                pytest.fail(f"production-mode test needs {problem}; CI=true makes it mandatory")
            pytest.skip(f"production-mode test skipped: {problem}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database for one test run and drop it afterwards; yields its URL."""
    import psycopg

    name = f"e2e_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def production_env(database_url: str) -> dict[str, str]:
    return {
        "SERVICE_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"e2e-{secrets.token_hex(4)}",
        "LOGIN_THROTTLE_RATE": "1000/min",
        "LOGIN_USER_THROTTLE_RATE": "1000/min",
    }
