"""A pgbouncer of the test's own in transaction pooling mode, in front of the machine's PostgreSQL
(docs/scaling.md "pgbouncer"): the recipe's settings, on a spare port, stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.liveserver import STARTUP_DEADLINE_S, PortTaken, free_port, port_taken, retry_on_taken_port
from tests.support.production import IN_CI, POSTGRES_URL

BINARIES = ("pgbouncer", "/usr/sbin/pgbouncer")


@dataclass
class PgBouncer:
    # Its own directory under /tmp: as root it runs as `nobody`, who cannot enter pytest's tmp_path.
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgbouncer-")))
    pool_size: int = 4
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def url(self, database_url: str) -> str:
        """`database_url` (on the machine's PostgreSQL) as reached through this pgbouncer."""
        parts = urlsplit(database_url)
        user = parts.username or "postgres"
        return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}"))

    def start(self) -> PgBouncer:
        return retry_on_taken_port(self._start, self._new_port)

    def _new_port(self) -> None:
        self.port = free_port()

    def _start(self) -> PgBouncer:
        binary = next((found for name in BINARIES if (found := shutil.which(name))), None)
        if binary is None:
            if IN_CI:
                pytest.fail("the pgbouncer recipe test needs pgbouncer; CI=true makes it mandatory")
            pytest.skip("pgbouncer recipe test skipped: pgbouncer is not installed (apt-get install pgbouncer)")
        target = urlsplit(POSTGRES_URL)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o777)  # pgbouncer refuses to run as root: it runs as `nobody` here
        (self.directory / "userlist.txt").write_text(f'"{target.username or "postgres"}" ""\n')
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={target.hostname or '127.0.0.1'} port={target.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'userlist.txt'}\n"
            # The recipe's mode and reset; a small pool, so the test sees it hold.
            f"pool_mode = transaction\nserver_reset_query =\ndefault_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\nignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        for path in self.directory.iterdir():
            path.chmod(0o666)
        for said in ("pgbouncer.log", "pgbouncer.out"):  # what an earlier attempt said
            (self.directory / said).unlink(missing_ok=True)
        user = [] if _not_root() else ["-u", "nobody"]
        output = (self.directory / "pgbouncer.out").open("ab")
        self.process = subprocess.Popen([binary, *user, str(ini)], stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = " ".join(
                    p.read_text() for p in (self.directory / "pgbouncer.log", self.directory / "pgbouncer.out")
                )
                raise (PortTaken if port_taken(said) else RuntimeError)(f"pgbouncer exited: {said}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        raise RuntimeError("pgbouncer did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _not_root() -> bool:
    import os

    return os.geteuid() != 0
