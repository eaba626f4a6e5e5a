"""Daphne processes for end-to-end tests (and bench/): a fresh SQLite database each, embedded defaults."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.liveserver import DaphneServer, base_env, manage
from tests.support.run import built_once

ServerFactory = Callable[..., DaphneServer]
# Tests log in many times a minute; the throttle itself has its own test.
RELAXED_LOGIN_THROTTLE = {"LOGIN_THROTTLE_RATE": "1000/min", "LOGIN_USER_THROTTLE_RATE": "1000/min"}


def _build_template(template: Path) -> None:
    template.unlink(missing_ok=True)  # what a failed build left
    env = base_env(DATABASE_URL=f"sqlite:///{template}")
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_demo_user")


def migrated_database(path: Path) -> None:
    """A fresh SQLite database at `path`, migrated and with the demo users: a copy of one prepared
    once per test run (tests/support/run.py), since migrating and hashing the demo passwords take
    seconds each time."""
    template = built_once("template.sqlite3", _build_template)
    for suffix in ("", "-wal"):  # the write-ahead log is folded in when the last connection closes
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{path}{suffix}")


def server_factory(directory: Path) -> tuple[ServerFactory, list[DaphneServer]]:
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
            migrated_database(database)
            prepared = True
        server = DaphneServer(env=env, args=args).start(directory)
        started.append(server)
        return server

    return start, started


@contextmanager
def running_server(directory: Path, **env: str) -> Iterator[DaphneServer]:
    """One daphne process on a fresh database (relaxed login throttle), stopped afterwards."""
    start, started = server_factory(directory)
    try:
        yield start(**RELAXED_LOGIN_THROTTLE, **env)
    finally:
        for server in started:
            server.stop()


def database_rows(server: DaphneServer, sql: str, *params: object) -> list[tuple]:
    """A query on an embedded server's SQLite database, read beside the running server (WAL mode)."""
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)) as db:
        return db.execute(sql, params).fetchall()
