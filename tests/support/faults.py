"""Fault injection for the tests: a Redis of their own to kill and restart, a TCP proxy to cut
PostgreSQL off, and a trading client that recovers the way the protocol says and counts every
numbered push it receives."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from tests.support.liveserver import (
    STARTUP_DEADLINE_S,
    DaphneServer,
    PortTaken,
    free_port,
    port_taken,
    reconnect,
    request,
    retry_on_taken_port,
    send_json,
    wait_until,
)
from tests.support.production import IN_CI, Cluster

STREAM_TYPES = frozenset({"simulator_status_update", "exchange_data_status", "device_id_invalidated"})


# --- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a spare port, keeping nothing on disk (like ours)."""

    directory: Path
    port: int = 0  # 0: a free port (another if a process takes it first); else that port, to restart on it
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.any_port = self.port == 0
        if self.any_port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        return retry_on_taken_port(self._start, self._new_port if self.any_port else None)

    def _new_port(self) -> None:
        self.port = free_port()

    def _start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("fault injection needs redis-server on PATH; CI=true makes it mandatory")
            pytest.skip("fault injection skipped: redis-server is not installed")
        log_path = self.directory / f"redis-{self.port}.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = log_path.read_text(errors="replace")
                raise (PortTaken if port_taken(said) else RuntimeError)(f"redis-server exited: {said}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.kill()


# --- A proxy that can cut a service off -----------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.open = True
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))  # bound here and now: nobody can take it
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


# --- A client that recovers and counts -------------------------------------------------------


@dataclass
class Recovery:
    closed_code: int | None
    closed_at: float
    recovered_at: float
    recovered: bool
    replayed: int


class Trader:
    """One device of a user, connected to one of `servers`, in a thread of its own.

    It follows the protocol's recovery: on a drop it reconnects (to the next live server) and
    sends `reconnect` with the last numbered push it applied. It counts every numbered push it
    receives, by (epoch, seq), and applies them exactly once and in order (holding one that
    arrives ahead of a hole). Its view of the orders is the latest applied snapshot.
    """

    def __init__(self, name: str, creds: dict, servers: list[DaphneServer], home: int) -> None:
        self.name = name
        self.creds = creds
        self.servers = servers
        self.current = home
        self.received: Counter[tuple[str, int]] = Counter()
        self.applied: list[tuple[str, int]] = []
        self.held: dict[tuple[str, int], dict] = {}
        self.epoch: str | None = None
        self.last = 0
        self.first_position: tuple[str, int] | None = None
        self.session_token: str | None = None
        self.orders: dict[str, str] = {}
        self.resyncs: list[dict] = []
        self.recoveries: list[Recovery] = []
        self.closes: list[int | None] = []
        self.errors: list[str] = []
        self.heartbeats_answered = 0
        # Give up on a socket silent this long (heartbeats unanswered: the server host is cut off),
        # without a close handshake the peer would never answer; None keeps it until it closes.
        self.silence_timeout_s: float | None = None
        self.silent_drops = 0
        self.types_seen: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.opened = threading.Event()
        self._dropped: tuple[int | None, float] | None = None
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"trader-{name}", daemon=True)

    # --- Driving ----------------------------------------------------------------------------

    def start(self) -> Trader:
        self._thread.start()
        assert self.opened.wait(20), f"{self.name} never connected: {self.errors}"
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
        self._thread.join(10)

    def send(self, message: dict) -> None:
        with self._lock:
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    send_json(self._ws, message)

    def view_of(self, order_ids: list[str]) -> dict[str, str | None]:
        with self._lock:
            return {order_id: self.orders.get(order_id) for order_id in order_ids}

    # --- The connection loop ----------------------------------------------------------------

    def _run(self) -> None:
        while not self.stopping.is_set():
            server = self.servers[self.current]
            url = f"{server.ws}/ws/session/?token={self.creds['token']}&deviceId={self.creds['deviceId']}"
            try:
                with connect(url, open_timeout=5, close_timeout=2, max_size=None) as ws:
                    with self._lock:
                        self._ws = ws
                    self._session(ws)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                self.closes.append(code)
                self._dropped = (code, time.monotonic())
                if code in (4001, 4003, 4009, 4010):
                    self.errors.append(f"final close {code}")
                    return
            except (OSError, InvalidHandshake, TimeoutError) as error:  # refused, or the server is gone
                self.errors.append(f"connect {server.port}: {error!r}")
                time.sleep(0.2)
            except Exception as error:
                self.errors.append(f"session: {error!r}")
                self._dropped = (None, time.monotonic())
            finally:
                with self._lock:
                    self._ws = None
            # Prefer another server after a drop: this one may be dead or going down.
            self.current = (self.current + 1) % len(self.servers)

    def _session(self, ws: ClientConnection) -> None:
        connected = json.loads(ws.recv(timeout=10))
        if connected.get("type") != "connected":
            raise RuntimeError(f"refused: {connected}")
        if self.session_token is None:
            self.epoch, self.last = connected["sessionEpoch"], connected["sessionSeq"]
            self.first_position = (self.epoch, self.last)
        else:
            position = {"lastSessionSeq": self.last, "sessionEpoch": self.epoch}
            send_json(ws, {**reconnect(self.creds["deviceId"], self.session_token, "re"), **position})
        self.session_token = connected["sessionToken"]
        self.opened.set()
        next_beat = heard = time.monotonic()
        while not self.stopping.is_set():
            if time.monotonic() >= next_beat:
                # A send fails once the server's close frame is in; what it sent before (`shutdown`)
                # is still to be read, and recv() gives it, then raises with the close code.
                with self._lock, contextlib.suppress(ConnectionClosed):
                    send_json(ws, {"type": "heartbeat", "timestamp": time.time() * 1000,
                                   "deviceId": self.creds["deviceId"], "connectionQuality": "good",
                                   "sessionStatus": "active", "simulatorStatus": "running"})  # fmt: skip
                next_beat = time.monotonic() + 1.0
            try:
                message = json.loads(ws.recv(timeout=0.2))
            except TimeoutError:
                if self.silence_timeout_s is not None and time.monotonic() - heard > self.silence_timeout_s:
                    self.silent_drops += 1
                    self.closes.append(None)
                    self._dropped = (None, time.monotonic())
                    with contextlib.suppress(OSError):
                        ws.socket.shutdown(socket.SHUT_RDWR)
                    return
                continue
            heard = time.monotonic()
            self._handle(message)

    def _handle(self, message: dict) -> None:
        kind = message.get("type")
        self.types_seen[kind] += 1
        if kind == "heartbeat_ack":
            self.heartbeats_answered += 1
        elif kind in STREAM_TYPES and "sessionSeq" in message:
            key = (message["sessionEpoch"], message["sessionSeq"])
            self.received[key] += 1
            if key[0] == self.epoch and key[1] <= self.last:
                return
            self.held[key] = message
            self._drain()
        elif kind == "exchange_data_status":
            self._apply(message)  # a snapshot outside the stream (resync, connect)
        elif kind == "reconnect_result":
            if self._dropped is not None:
                code, at = self._dropped
                self.recoveries.append(
                    Recovery(code, at, time.monotonic(), bool(message["recovered"]), int(message["replayed"]))
                )
                self._dropped = None
            self._reset(message["sessionEpoch"], message["sessionSeq"])
        elif kind == "session_resync":
            self.resyncs.append(message)
            self._reset(message["sessionEpoch"], message["sessionSeq"])
        elif kind == "error":
            self.errors.append(f"error {message.get('code')}: {message.get('message')}")

    def _reset(self, epoch: str, seq: int) -> None:
        self.epoch, self.last = epoch, seq
        self.held = {k: m for k, m in self.held.items() if k[0] == epoch and k[1] > seq}
        self._drain()

    def _drain(self) -> None:
        while (self.epoch, self.last + 1) in self.held:
            message = self.held.pop((self.epoch, self.last + 1))
            self.last += 1
            self.applied.append((self.epoch, self.last))  # type: ignore[arg-type]
            self._apply(message)

    def _apply(self, message: dict) -> None:
        if message.get("type") == "exchange_data_status":
            with self._lock:
                self.orders = {order_id: order["status"] for order_id, order in message["userOrders"].items()}


def place_market_orders(server: DaphneServer, token: str, count: int, pause_s: float) -> list[str]:
    """Orders a user places over REST, one after another.

    While a worker adopts the simulator it is `starting` for a moment, and an order then is refused
    409 `simulator_not_running` (documented; nothing is stored): the trader sends it again, as a
    client that saw the status would, until the simulator runs again.
    """
    ids = []
    ticket = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 1}  # a buy is never refused
    answers: list[tuple[int, Any]] = []

    def answered() -> bool:
        answers.append(server.request("POST", "/api/market/orders/", ticket, token=token))
        status, order = answers[-1]
        return not (status == 409 and order.get("code") == "simulator_not_running")

    for _ in range(count):
        wait_until(answered, 30)
        status, order = answers[-1]
        assert status == 201, order
        ids.append(order["orderId"])
        time.sleep(pause_s)
    return ids


class Trading:
    """Each user places `count` market orders over REST on `server`, in a thread per user."""

    def __init__(
        self,
        server: DaphneServer,
        tokens: dict[str, str],
        count: int,
        *,
        pause_s: float = 0.15,
        join_timeout_s: float | None = None,
    ) -> None:
        self.placed: dict[str, list[str]] = {}
        self.failures: list[str] = []
        self.join_timeout_s = join_timeout_s
        self.threads = [
            threading.Thread(target=self._run, args=(server, *item, count, pause_s)) for item in tokens.items()
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, server: DaphneServer, username: str, token: str, count: int, pause_s: float) -> None:
        try:
            self.placed[username] = place_market_orders(server, token, count, pause_s=pause_s)
        except BaseException as error:
            self.failures.append(f"{username}: {error!r}")

    def finish(self) -> dict[str, list[str]]:
        for thread in self.threads:
            thread.join(self.join_timeout_s)
        assert not self.failures, self.failures
        return self.placed


def start_simulator(server: DaphneServer, creds: dict) -> None:
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        json.loads(ws.recv(timeout=10))
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if message.get("type") == "simulator_status_update" and message["simulatorStatus"] == "running":
                return
            if message.get("type") == "error":
                raise AssertionError(message)
    raise AssertionError("the simulator did not start")


# --- A trading scenario on a production cluster (fault injection, Redis topologies) -----------

SETTINGS = {
    "MARKET_TICK_MS": "100",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
    "SESSION_STREAM_CHECK_INTERVAL_S": "1",
    "SHUTDOWN_RETRY_AFTER_MIN_MS": "0",
    "SHUTDOWN_RETRY_AFTER_MAX_MS": "200",
    "REDIS_SOCKET_TIMEOUT_S": "6",
}
USERS, DEVICES = 3, 4  # twelve clients, half on each server
NET_FILLS_AND_POSITIONS = """
SELECT
  (SELECT COALESCE(SUM(CASE WHEN f.side = 'buy' THEN f.quantity ELSE -f.quantity END), 0)
     FROM market_app_fill f JOIN auth_user u ON u.id = f.user_id WHERE u.username = %s),
  (SELECT COALESCE(SUM(p.quantity), 0)
     FROM market_app_position p JOIN auth_user u ON u.id = p.user_id WHERE u.username = %s)
"""


def traders_for(cluster: Cluster) -> tuple[list[Trader], dict[str, str]]:
    """USERS users with a running simulator, each with DEVICES traders alternating between the servers."""
    traders, tokens = [], {}
    issued = iter(cluster.servers[0].issue_tokens(*(f"fault-{u}" for u in range(USERS) for _ in range(DEVICES))))
    for u in range(USERS):
        username = f"fault-{u}"
        devices = [next(issued) for _ in range(DEVICES)]
        start_simulator(cluster.servers[1], devices[0])
        tokens[username] = devices[0]["token"]
        for d, creds in enumerate(devices):
            traders.append(Trader(f"{username}/{d}", creds, cluster.servers, home=d % 2).start())
    return traders, tokens


def assert_nothing_lost_or_doubled(traders: list[Trader], placed: dict[str, list[str]]) -> int:
    """Every order reached every client of its user in its final state, and no numbered push waits
    behind a hole (one may, while the push before it is on its way); no numbered push twice."""
    for trader in traders:
        orders = placed[trader.name.split("/")[0]]
        settled = wait_until(lambda t=trader, o=orders: set(t.view_of(o).values()) == {"filled"} and not t.held, 60)
        assert settled, (trader.name, trader.view_of(orders), sorted(trader.held), trader.errors)
    checked = 0
    for trader in traders:
        doubled = {key: n for key, n in trader.received.items() if n > 1}
        assert not doubled, (trader.name, doubled)
        checked += sum(trader.received.values())
    return checked


def recovered_once(traders: list[Trader], count: int) -> list[Trader]:
    """The traders that recovered after a drop, once `count` of them have: each recovery ends with
    a `reconnect_result`, which may still be on its way when the test's own work is done."""
    assert wait_until(lambda: sum(1 for t in traders if t.recoveries) >= count, 30), [t.errors for t in traders]
    return [t for t in traders if t.recoveries]


def session_ids(cluster: Cluster) -> dict[str, str]:
    rows = cluster.query(
        "SELECT d.device_id, s.id FROM sessions_app_tradingsession s JOIN sessions_app_device d ON d.id = s.device_id"
        " WHERE s.status = 'active'"
    )
    return {device_id: str(session_id) for device_id, session_id in rows}
