"""Production mode for tests: a fresh PostgreSQL database and a private Redis key prefix.

Under CI=true an unreachable PostgreSQL or Redis fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.support.liveserver import DaphneServer, WorkerProcess, base_env, manage
from tests.support.run import at_end, built_once

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


def require_services(*urls: str) -> None:
    """PostgreSQL and Redis (or just the URLs given) must answer: fail under CI=true, else skip."""
    for url in urls or (POSTGRES_URL, REDIS_URL):
        problem = _reachable(url)
        if problem:
            if IN_CI:
                pytest.fail(f"production-mode test needs {problem}; CI=true makes it mandatory")
            pytest.skip(f"production-mode test skipped: {problem}")


def redis_keys(url: str, pattern: str) -> list[str]:
    """The keys matching `pattern`, 10,000 a trip: the machine's Redis outlives the runs, and
    redis-py's default of 10 a trip crawled its tens of thousands of keys (2 s a test)."""
    import redis

    return [key.decode() for key in redis.Redis.from_url(url).scan_iter(pattern, count=10_000)]


@contextmanager
def private_redis_prefix(name: str) -> Iterator[str]:
    """A Redis key prefix of one test's own; its keys are deleted afterwards."""
    require_services(REDIS_URL)
    prefix = f"test-{name}-{secrets.token_hex(4)}"
    try:
        yield prefix
    finally:
        import redis

        keys = redis_keys(REDIS_URL, f"{prefix}:*")
        if keys:
            redis.Redis.from_url(REDIS_URL).delete(*keys)


def _admin() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), autocommit=True)


def _database_url(name: str) -> str:
    return urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))


def _drop(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build_template(path: Path) -> None:
    name = f"e2e_template_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        manage(base_env(**production_env(_database_url(name))), "migrate", "--noinput")
    except BaseException:
        _drop(name)
        raise
    path.write_text(name)


def _migrated_template() -> str:
    """A database migrated once per test run (tests/support/run.py), dropped at its end: each
    cluster's database is a copy (CREATE DATABASE ... TEMPLATE, milliseconds) instead of a
    `migrate` of its own (seconds)."""
    return built_once("postgres-template", _build_template).read_text()


def _drop_template(run: Path) -> None:
    built = run / "postgres-template"
    if built.exists():
        _drop(built.read_text())


at_end(_drop_template)


@contextmanager
def fresh_postgres_database(*, migrated: bool = False) -> Iterator[str]:
    """A database of one test's own, dropped afterwards; yields its URL. Empty, or `migrated`."""
    name = f"e2e_{secrets.token_hex(6)}"
    template = f' TEMPLATE "{_migrated_template()}"' if migrated else ""
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _database_url(name)
    finally:
        _drop(name)


def _collect_static(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)  # what a failed build left
    directory.mkdir()
    directory.chmod(0o755)  # nginx's workers (another user) serve it in the recipe's test
    manage(base_env(SERVE_STATIC="false", STATIC_ROOT=str(directory)), "collectstatic", "--noinput")


def collected_static() -> Path:
    """A STATIC_ROOT filled by collectstatic (hashed names and their manifest), once per test run
    (tests/support/run.py): a production process without one refuses to start, as the recipe's would."""
    return built_once("static", _collect_static)


def production_env(database_url: str) -> dict[str, str]:
    return {
        "SERVICE_MODE": "production",
        "STATIC_ROOT": str(collected_static()),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"e2e-{secrets.token_hex(4)}",
        "LOGIN_THROTTLE_RATE": "1000/min",
        "LOGIN_USER_THROTTLE_RATE": "1000/min",
    }


@dataclass
class Cluster:
    """Production mode for real: daphne processes and simulator workers on a fresh PostgreSQL database."""

    directory: Path
    env: dict[str, str]
    database_url: str
    servers: list[DaphneServer]
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(env=self.env).start(self.directory)
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.process is not None and w.process.poll() is None]

    def worker(self, worker_id: str) -> WorkerProcess:
        return next(w for w in self.workers if w.worker_id == worker_id)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as db:
            return db.execute(sql, params).fetchall()


C = TypeVar("C", bound=Cluster)


@contextmanager
def production_cluster(
    directory: Path,
    settings: dict[str, str],
    *,
    servers: int,
    workers: int,
    kind: type[C] = Cluster,
    server_args: tuple[str, ...] = (),
) -> Iterator[C]:
    require_services()
    with fresh_postgres_database(migrated=True) as database_url:
        env = base_env(**{**production_env(database_url), **settings})
        cluster = kind(directory, env, database_url, [])
        try:
            for _ in range(servers):
                cluster.servers.append(DaphneServer(env=env, args=server_args).start(directory))
            for _ in range(workers):
                cluster.start_worker()
            yield cluster
        except BaseException:
            print_warnings_logged(cluster)
            raise
        finally:
            for process in [*cluster.workers, *cluster.servers]:
                process.stop()


def print_warnings_logged(cluster: Cluster) -> None:
    """What each process logged at WARNING and above (and tracebacks): a failing test shows them with
    its output, the logs themselves going with its temporary directory."""
    for process in [*cluster.servers, *cluster.workers]:
        lines = [line for line in process.log().splitlines() if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line)]
        print(f"--- {process.log_path}: {len(lines)} lines at WARNING and above, the last 40 ---")
        print("\n".join(lines[-40:]))
