"""The production layout on separate network hosts: Linux network namespaces on this machine.

A switch namespace holds three bridges, one per network; every host is a namespace of its own,
plugged into the networks it needs by a veth pair whose far end is a port of that network's
bridge:

    front  10.0.1.0/24   clients (the test's sockets), nginx, server hosts a and b
    redis  10.0.2.0/24   a, b, workers w1 and w2, the Redis host, ops
    db     10.0.3.0/24   a, b, w1, w2, the PostgreSQL host (a cluster of its own), ops

`ops` is the operator's console (migrations, `issue_token`, the assertions' SQL). No namespace
has a default route or a way out: every packet stays on these bridges. A partition is a switch
port taken down (`cut`), which the host sees as its cable pulled: no FIN, no reset, packets
simply go nowhere; `heal` puts it back. The test process joins a namespace per thread
(setns(2) on the calling thread only), so its clients sit in `clients` and its SQL in `ops`.

Namespaces are named `tsn-<pid>-<suffix>-<host>`; a run sweeps those of dead test processes
before it starts, and `destroy()` removes everything the layout made (processes first).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.faults import Trader
from tests.support.liveserver import ROOT, DaphneServer, TokenDesk, base_env, http_json
from tests.support.nginx import MIME_TYPES, TEMPLATE, nginx_binary
from tests.support.production import IN_CI, collected_static, production_env

PREFIX = "tsn-"
NETWORKS = {"front": "10.0.1", "redis": "10.0.2", "db": "10.0.3"}
# host: (its address's last octet on every network it is on, those networks)
HOSTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "a": (11, ("front", "redis", "db")),
    "b": (12, ("front", "redis", "db")),
    "w1": (21, ("redis", "db")),
    "w2": (22, ("redis", "db")),
    "redis": (30, ("redis",)),
    "pg": (40, ("db",)),
    "proxy": (2, ("front",)),
    "clients": (100, ("front",)),
    "ops": (200, ("redis", "db")),
}
SERVER_PORT, PROXY_PORT, REDIS_PORT, PG_PORT = 8000, 8080, 6379, 5432
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def require_netns() -> None:
    """Root, `ip` and nginx and PostgreSQL's binaries: fail under CI=true, else skip."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    for binary in ("ip", "redis-server", "initdb"):
        if shutil.which(binary) is None:
            missing.append(binary)
    if nginx_binary() is None:
        missing.append("nginx")
    if shutil.which("setpriv") is None:
        missing.append("setpriv (util-linux)")
    if missing:
        if IN_CI:
            pytest.fail(f"the namespaced layout needs {', '.join(missing)}; CI=true makes it mandatory")
        pytest.skip(f"namespaced layout skipped: no {', '.join(missing)}")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def ip_batch(commands: list[str], namespace: str | None = None) -> None:
    prefix = ["-n", namespace] if namespace else []
    result = subprocess.run(
        ["ip", *prefix, "-batch", "-"], input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip -batch failed: {result.stderr}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_namespace(name: str) -> None:
    """Kill what still runs in it, then delete it (a namespace with processes would outlive its name)."""
    for _ in range(5):
        pids = [int(p) for p in ip("netns", "pids", name, check=False).stdout.split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    ip("netns", "del", name, check=False)


def sweep_stale_namespaces() -> list[str]:
    """Delete the namespaces a killed test run left behind (their creator's pid is gone)."""
    swept = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if not _alive(pid):
            _delete_namespace(name)
            swept.append(name)
    return swept


class Network:
    """The namespaces, bridges and links of one layout."""

    def __init__(self) -> None:
        self.suffix = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.made: list[str] = []

    def ns(self, host: str) -> str:
        return f"{PREFIX}{self.suffix}-{host}"

    @staticmethod
    def address(host: str, network: str) -> str:
        octet, networks = HOSTS[host]
        assert network in networks, (host, network)
        return f"{NETWORKS[network]}.{octet}"

    def create(self) -> Network:
        sweep_stale_namespaces()
        switch = self.ns("switch")
        for name in [switch, *(self.ns(host) for host in HOSTS)]:
            ip("netns", "add", name)
            self.made.append(name)
        switch_commands = ["link set lo up"]
        for network in NETWORKS:
            # No STP and no forwarding delay: a port taken up forwards at once (a healed link).
            switch_commands += [
                f"link add {network} type bridge stp_state 0 forward_delay 0",
                f"link set {network} up",
            ]
        ip_batch(switch_commands, switch)
        root_commands = []
        for host, (_, networks) in HOSTS.items():
            for network in networks:
                root_commands.append(
                    f"link add {network} netns {self.ns(host)} type veth peer name {host}-{network} netns {switch}"
                )
        ip_batch(root_commands)
        ip_batch(
            [f"link set {host}-{network} master {network} up" for host, (_, nets) in HOSTS.items() for network in nets],
            switch,
        )
        for host, (_, networks) in HOSTS.items():
            commands = ["link set lo up"]
            for network in networks:
                commands += [
                    f"addr add {self.address(host, network)}/24 dev {network}",
                    f"link set {network} up",
                ]
            ip_batch(commands, self.ns(host))
        return self

    def destroy(self) -> None:
        for name in reversed(self.made):
            _delete_namespace(name)
        self.made.clear()

    # --- Partitions -----------------------------------------------------------------------------

    def cut(self, host: str, network: str) -> None:
        """Pull `host`'s cable on `network` at the switch: its packets there go nowhere, no FIN."""
        ip("-n", self.ns("switch"), "link", "set", f"{host}-{network}", "down")

    def heal(self, host: str, network: str) -> None:
        ip("-n", self.ns("switch"), "link", "set", f"{host}-{network}", "up")

    @contextlib.contextmanager
    def partitioned(self, host: str, network: str) -> Iterator[None]:
        self.cut(host, network)
        try:
            yield
        finally:
            self.heal(host, network)

    # --- Running things in a namespace ---------------------------------------------------------------

    def command(self, host: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *argv]

    @contextlib.contextmanager
    def entered(self, host: str) -> Iterator[None]:
        """Run the calling thread in `host`'s namespace (sockets it opens stay there); others are unaffected."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.ns(host)}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns(host)}")
            yield
        finally:
            try:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
            finally:
                os.close(own)
                os.close(target)


# --- The hosts' processes -----------------------------------------------------------------------


@dataclass
class HostProcess:
    """A process the layout started in a namespace, with its output in a log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@dataclass
class ServerHost(DaphneServer):
    """A daphne process on its own host; HTTP and sockets from the test go out of the clients' namespace.
    The layout starts it (`Layout.start_server`) and issues tokens (`Layout.issue_token`), not this."""

    host: str = ""
    address: str = ""
    network: Network | None = None
    worker_id: str = ""

    @property
    def http(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.address}:{self.port}"

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        assert self.network is not None
        with self.network.entered("clients"):
            return http_json(self.http, method, path, body, token=token, headers=headers)

    def connect(self, token: str | None, device_id: str | None, **kwargs: Any) -> ClientConnection:
        assert self.network is not None
        query = "&".join(f"{k}={v}" for k, v in (("token", token), ("deviceId", device_id)) if v is not None)
        with self.network.entered("clients"):
            return connect(f"{self.ws}/ws/session/?{query}", open_timeout=10, close_timeout=2, **kwargs)


@dataclass
class Proxy:
    """nginx with the shipped recipe on the proxy host, in front of the server hosts."""

    address: str
    port: int
    network: Network
    process: HostProcess

    @property
    def http(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.address}:{self.port}"

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        with self.network.entered("clients"):
            return http_json(self.http, method, path, body, token=token)

    def login(self, username: str, password: str) -> dict:
        status, payload = self.request("POST", "/api/auth/token/", {"username": username, "password": password})
        assert status == 201, payload
        return payload


class HostTrader(Trader):
    """faults.Trader from the clients' host; it gives up on a socket that stays silent for
    `silence_timeout_s` (its heartbeats unanswered), as a client behind a pulled cable must."""

    def __init__(self, *args: Any, network: Network, silence_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.network = network
        self.silence_timeout_s = silence_timeout_s

    def _run(self) -> None:
        with self.network.entered("clients"):
            super()._run()


def _wait(what: str, check: Any, timeout: float, process: HostProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what} exited early:\n{process.log()[-4000:]}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    tail = f":\n{process.log()[-4000:]}" if process else ""
    raise RuntimeError(f"{what} did not come up within {timeout} s{tail}")


@dataclass
class Layout:
    """Everything of one namespaced production layout; `destroy()` undoes all of it."""

    network: Network
    directory: Path
    settings: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    processes: list[HostProcess] = field(default_factory=list)
    servers: list[ServerHost] = field(default_factory=list)
    workers: dict[str, HostProcess] = field(default_factory=dict)
    worker_ids: dict[str, str] = field(default_factory=dict)
    proxy: Proxy | None = None
    database_url: str = ""
    desk: TokenDesk | None = None
    _pg_dir: Path | None = None

    # --- Starting ---------------------------------------------------------------------------------

    def spawn(self, host: str, name: str, argv: list[str], env: dict[str, str] | None = None) -> HostProcess:
        log_path = self.directory / f"{name}.log"
        with log_path.open("ab") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                self.network.command(host, *argv), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        started = HostProcess(name, process, log_path)
        self.processes.append(started)
        return started

    def start_redis(self) -> None:
        address = self.network.address("redis", "redis")
        process = self.spawn(
            "redis",
            "redis",
            ["redis-server", "--port", str(REDIS_PORT), "--bind", address, "--protected-mode", "no", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
        )  # fmt: skip
        _wait("redis-server", lambda: self._tcp_open("ops", address, REDIS_PORT), 15, process)

    def start_postgres(self) -> None:
        """A cluster of the PostgreSQL host's own, bound to its address; trust from the db network only."""
        bindir = Path(shutil.which("initdb") or "initdb").resolve().parent
        self._pg_dir = Path(tempfile.mkdtemp(prefix="tsn-pg-"))
        shutil.chown(self._pg_dir, "postgres", "postgres")
        data = self._pg_dir / "data"
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
             "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {NETWORKS['db']}.0/24 trust\n")
        address = self.network.address("pg", "db")
        process = self.spawn(
            "pg",
            "postgres",
            [*as_postgres, str(bindir / "postgres"), "-D", str(data), "-c", f"listen_addresses={address}",
             "-c", f"port={PG_PORT}", "-c", f"unix_socket_directories={self._pg_dir}", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
             # A host cut mid-transaction leaves its session idle in that transaction, holding its row
             # locks: PostgreSQL ends it (docs/partitions.md, "the database's side").
             "-c", "idle_in_transaction_session_timeout=3000"],
        )  # fmt: skip
        _wait("postgres", lambda: self._tcp_open("ops", address, PG_PORT), 30, process)
        # Bounded waits over a dead link: without them a query on a cut connection waits for TCP's
        # retransmissions to give up (about a quarter of an hour). docs/partitions.md.
        options = "connect_timeout=3&keepalives=1&keepalives_idle=2&keepalives_interval=1&keepalives_count=2"
        self.database_url = f"postgres://postgres@{address}:{PG_PORT}/trading?{options}&tcp_user_timeout=4000"
        _wait("the database", lambda: self._create_database() or True, 15)

    def _create_database(self) -> None:
        with self.network.entered("ops"), psycopg.connect(self._dsn("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE trading")

    def _dsn(self, name: str = "trading") -> str:
        return f"postgresql://postgres@{self.network.address('pg', 'db')}:{PG_PORT}/{name}?connect_timeout=3"

    def _tcp_open(self, host: str, address: str, port: int) -> bool:
        with self.network.entered(host), socket.create_connection((address, port), timeout=1):
            return True

    def manage(self, *args: str) -> str:
        """manage.py on the operator's console (it reaches the database and Redis)."""
        result = subprocess.run(
            self.network.command("ops", sys.executable, "manage.py", *args),
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def issue_token(self, username: str, *extra: str) -> dict:
        """`issue_token --create` on the operator's console, by a desk kept open there (a `manage.py`
        each cost a second and a half of CPU)."""
        if self.desk is None:
            self.desk = TokenDesk(self.env, prefix=tuple(self.network.command("ops")))
        return self.desk.issue(username, "--create", *extra)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.network.entered("ops"), psycopg.connect(self._dsn()) as db:
            return db.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction_from(self, host: str, sql: str, *params: object) -> Iterator[None]:
        """A transaction from `host` that ran `sql` and stays open, holding its row locks (as a lease
        renewal or a fill of that host's worker holds them between its statements)."""
        with self.network.entered(host):
            db = psycopg.connect(self._dsn())  # its socket stays in the host's namespace
        try:
            db.execute(sql, params)
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                db.close()

    def stream_head(self, session_id: str) -> tuple[str, int]:
        """A session stream's (epoch, last seq), read from the Redis host."""
        import redis

        prefix = self.env["CHANNEL_LAYER_PREFIX"]
        with self.network.entered("ops"):
            client = redis.Redis.from_url(self.env["REDIS_URL"])
            try:
                epoch, seq = client.hmget(f"{prefix}:stream:{session_id}:m", "epoch", "seq")
            finally:
                client.close()
        return (epoch or b"").decode(), int(seq or 0)

    def start_server(self, host: str) -> ServerHost:
        address = self.network.address(host, "front")
        server = ServerHost(env=self.env, port=SERVER_PORT, host=host, address=address, network=self.network)
        # Every address of the host: the proxy and clients come over the front network, the
        # operator's metrics scrape over the back one.
        argv = [sys.executable, "-m", "daphne", "-e", f"tcp:port={SERVER_PORT}:interface=0.0.0.0:backlog=1024",
                "config.asgi:application"]  # fmt: skip
        started = self.spawn(host, f"daphne-{host}", argv, self.env)
        server.process = started.process
        server.log_path = started.log_path

        def healthy() -> bool:
            status, _ = server.request("GET", "/healthz")
            return status == 200

        _wait(f"daphne on {host}", healthy, 40, started)
        self.servers.append(server)
        return server

    def start_worker(self, host: str) -> HostProcess:
        worker = self.spawn(host, f"worker-{host}", [sys.executable, "manage.py", "simulator_worker"], self.env)

        def running() -> bool:
            for line in worker.log().splitlines():
                if line.startswith("simulator worker ") and " running" in line:
                    self.worker_ids[host] = line.split()[2]
                    return True
            return False

        _wait(f"the worker on {host}", running, 40, worker)
        self.workers[host] = worker
        return worker

    def start_proxy(self) -> Proxy:
        directory = self.directory / "nginx"
        directory.mkdir(exist_ok=True)
        address = self.network.address("proxy", "front")
        site = string.Template(TEMPLATE.read_text()).safe_substitute(
            LISTEN_PORT=f"{address}:{PROXY_PORT}",
            UPSTREAM_SERVERS=" ".join(f"server {s.address}:{s.port} max_fails=0;" for s in self.servers),
            STATIC_ROOT=str(self.env["STATIC_ROOT"]).rstrip("/") + "/",
        )
        site = site.replace("/var/log/nginx/trading-simulator.access.log", str(directory / "access.log"))
        (directory / "site.conf").write_text(site)
        (directory / "nginx.conf").write_text(f"""
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 1024; }}
http {{
    include {MIME_TYPES}; default_type application/octet-stream;
    client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi; uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
    include {directory}/site.conf;
}}
""")
        argv = [str(nginx_binary()), "-c", f"{directory}/nginx.conf", "-p", str(directory)]
        process = self.spawn("proxy", "nginx", argv)
        self.proxy = Proxy(address, PROXY_PORT, self.network, process)
        _wait("nginx", lambda: self.proxy is not None and self.proxy.request("GET", "/healthz")[0] == 200, 15, process)
        return self.proxy

    # --- Looking at the hosts ---------------------------------------------------------------------------

    def server(self, host: str) -> ServerHost:
        return next(s for s in self.servers if s.host == host)

    def metrics_of(self, host: str, via: str = "redis") -> str:
        """A server host's /metrics, scraped from the operator's console over a back network."""
        address = self.network.address(host, via)
        url = f"http://{address}:{SERVER_PORT}/metrics"
        with self.network.entered("ops"), urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def metric(self, host: str, name: str, *, via: str = "redis", **labels: str) -> float:
        """One sample's value from a server host's /metrics (0 when absent)."""
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        wanted = f"{name}{{{selector}}}" if labels else name
        total = 0.0
        for line in self.metrics_of(host, via).splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            if sample == wanted or (not labels and sample.split("{")[0] == name):
                total += float(value)
        return total

    def ready(self, host: str, via: str = "redis") -> tuple[int, Any]:
        address = self.network.address(host, via)
        with self.network.entered("ops"):
            return http_json(f"http://{address}:{SERVER_PORT}", "GET", "/readyz")

    # --- Stopping ---------------------------------------------------------------------------------

    def destroy(self) -> None:
        try:
            if self.desk is not None:
                with contextlib.suppress(Exception):
                    self.desk.close()
            for process in reversed(self.processes):
                with contextlib.suppress(Exception):
                    process.stop(timeout=10)
        finally:
            self.network.destroy()
            if self._pg_dir is not None:
                shutil.rmtree(self._pg_dir, ignore_errors=True)


@contextlib.contextmanager
def namespaced_layout(directory: Path, settings: dict[str, str]) -> Iterator[Layout]:
    """Two server hosts, two worker hosts, a Redis host, a PostgreSQL host and nginx, each a
    namespace of its own; the clients in another. Torn down completely, even when a test fails."""
    require_netns()
    static_root = collected_static()  # before any namespace: the same files on every host
    layout = Layout(Network(), directory, settings)
    try:
        layout.network.create()
        layout.start_redis()
        layout.start_postgres()
        # The front addresses, and the servers' back ones where the operator scrapes them.
        hosts = ",".join(
            [
                *(Network.address(h, "front") for h in ("a", "b", "proxy")),
                *(Network.address(h, net) for h in "ab" for net in ("redis", "db")),
            ]
        )
        layout.env = base_env(
            **{
                **production_env(layout.database_url),
                "STATIC_ROOT": str(static_root),
                "REDIS_URL": f"redis://{Network.address('redis', 'redis')}:{REDIS_PORT}/0",
                "ALLOWED_HOSTS": hosts,
                "METRICS_ALLOWED_IPS": f"{Network.address('ops', 'redis')},{Network.address('ops', 'db')}",
                **settings,
            }
        )
        layout.manage("migrate", "--noinput")
        for host in ("a", "b"):
            layout.start_server(host)
        for host in ("w1", "w2"):
            layout.start_worker(host)
        layout.start_proxy()
        yield layout
    finally:
        layout.destroy()


def wait_for(condition: Any, timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `timeout` (a bounded loop)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - started
        time.sleep(interval)
    return None
