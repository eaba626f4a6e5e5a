"""Redis servers of a test's own beyond one: shards, and a master with a replica watched by three
Sentinels (`redis-server --sentinel`), on spare ports in the test's directory, stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.faults import RedisServer
from tests.support.liveserver import STARTUP_DEADLINE_S, PortTaken, free_port, port_taken, retry_on_taken_port
from tests.support.production import IN_CI

MASTER_NAME = "trading"


def _redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("these tests need redis-server on PATH; CI=true makes it mandatory")
        pytest.skip("skipped: redis-server is not installed")
    return binary


def _wait_for_port(port: int, what: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log_path.read_text(errors="replace")
            raise (PortTaken if port_taken(said) else RuntimeError)(f"{what} exited: {said}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} on port {port} did not start")


@contextmanager
def redis_shards(directory: Path, count: int) -> Iterator[list[RedisServer]]:
    """`count` empty redis-servers, one per shard."""
    servers: list[RedisServer] = []
    try:
        for n in range(count):
            shard_dir = directory / f"shard-{n}"
            shard_dir.mkdir(parents=True, exist_ok=True)
            servers.append(RedisServer(shard_dir).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


@dataclass
class SentinelProcess:
    directory: Path
    monitored_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> SentinelProcess:
        return retry_on_taken_port(self._start, self._new_port)

    def _new_port(self) -> None:
        self.port = free_port()

    def _start(self) -> SentinelProcess:
        config = self.directory / f"sentinel-{self.port}.conf"
        # Quick to judge a master down and to fail over, so a test waits seconds, not minutes.
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.monitored_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        log_path = self.directory / f"sentinel-{self.port}.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [_redis_server_binary(), str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for_port(self.port, "redis-sentinel", self.process, log_path)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class SentinelGroup:
    """A master, its replica and three Sentinels that watch them."""

    directory: Path
    servers: list[RedisServer] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS's value."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def sentinel_client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.sentinels[0].port, socket_timeout=2)

    def master_port(self) -> int:
        _host, port = self.sentinel_client().sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def master(self) -> RedisServer:
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    def replicas_known(self) -> int:
        return len(self.sentinel_client().sentinel_slaves(MASTER_NAME))

    def failover(self, *, demoted: bool = True) -> int:
        """SENTINEL FAILOVER, then wait until every Sentinel names the new master (and, with
        `demoted`, until the old one has become its replica); returns the new master's port.

        Until the Sentinels reconfigure the old master (seconds later) it still accepts writes
        from clients that kept their connections to it: writes a failover then loses."""
        before = self.master_port()
        self.sentinel_client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        port = self.wait_for_new_master(before)
        if demoted:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(redis.RedisError):
                    if redis.Redis(port=before, socket_timeout=1).info("replication")["role"] == "slave":
                        break
                assert time.monotonic() < deadline, "the old master was not made a replica"
                time.sleep(0.2)
        return port

    def wait_for_new_master(self, before: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for sentinel in self.sentinels:
                with contextlib.suppress(redis.RedisError):
                    client = redis.Redis(host="127.0.0.1", port=sentinel.port, socket_timeout=1)
                    ports.add(int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            if len(ports) == 1 and before not in ports:
                port = ports.pop()
                with contextlib.suppress(redis.RedisError):
                    if redis.Redis(port=port, socket_timeout=1).info("replication")["role"] == "master":
                        return port
            time.sleep(0.2)
        raise AssertionError("the Sentinels did not agree on a new master")


@contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(directory)
    try:
        master = RedisServer(directory / "master")
        (directory / "master").mkdir(parents=True, exist_ok=True)
        group.servers.append(master.start())
        (directory / "replica").mkdir(parents=True, exist_ok=True)
        replica = RedisServer(directory / "replica").start()
        group.servers.append(replica)
        redis.Redis(port=replica.port).replicaof("127.0.0.1", master.port)
        deadline = time.monotonic() + 10
        while redis.Redis(port=replica.port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.1)
        for _ in range(3):
            group.sentinels.append(SentinelProcess(directory, master.port).start())
        deadline = time.monotonic() + 15
        while group.replicas_known() < 1 or not _sentinels_see_each_other(group):
            assert time.monotonic() < deadline, "the Sentinels did not find the replica and each other"
            time.sleep(0.2)
        yield group
    finally:
        for process in [*group.sentinels, *group.servers]:
            process.stop()


def _sentinels_see_each_other(group: SentinelGroup) -> bool:
    with contextlib.suppress(redis.RedisError):
        return len(group.sentinel_client().sentinel_sentinels(MASTER_NAME)) >= len(group.sentinels) - 1
    return False
