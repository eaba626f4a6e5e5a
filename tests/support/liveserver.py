"""Run the real service (daphne in a subprocess) for end-to-end tests, and talk to it."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
ASGI_APPLICATION = "config.asgi:application"
LISTEN_BACKLOG = 1024
# How long a process the tests start may take to be ready: a deadline for a poll, which a loaded
# machine stretches (Django's start alone takes seconds there); a hung start still fails.
STARTUP_DEADLINE_S = 90
# Likewise for a handshake, and for the next message a test waits for (30 s, in recv_json and the like).
OPEN_TIMEOUT_S = 30
T = TypeVar("T")


def http_json(
    base_url: str, method: str, path: str, body: Any = None, *, token: str | None = None, headers: dict | None = None
) -> tuple[int, Any]:
    """One HTTP request with a JSON body; returns the status and the decoded JSON answer (errors too)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        # A deadline, not a bound: on a loaded machine a login (a slow password hash) can take seconds.
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


# The servers the tests start listen on ports from a block of their pytest-xdist worker's own, below
# the kernel's ephemeral range (32768 and up by default): there a port probed free with bind(0) can
# be taken by any client socket before the server binds it, and two workers could probe the same
# one. A port someone else holds (another test run on this machine) is passed over, and a server
# that still loses its port before binding it starts again on another (`PortTaken`).
FIRST_PORT, PORTS_PER_WORKER, WORKER_BLOCKS = 20000, 500, 25
_ports: Iterator[int] | None = None


class PortTaken(RuntimeError):
    """Another process bound the port between our check and the server's own bind."""


def _worker_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...; unset without -n
    return (int(worker[2:]) + 1) % WORKER_BLOCKS if worker.startswith("gw") else 0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, from this worker's own block."""
    global _ports
    if _ports is None:
        first = FIRST_PORT + _worker_block() * PORTS_PER_WORKER
        start = random.randrange(PORTS_PER_WORKER)  # another run on this machine starts elsewhere
        _ports = itertools.cycle([first + (start + n) % PORTS_PER_WORKER for n in range(PORTS_PER_WORKER)])
    for port in itertools.islice(_ports, PORTS_PER_WORKER):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this worker's block of {PORTS_PER_WORKER}")


def port_taken(log: str) -> bool:
    """Whether a server's output says it could not bind its port."""
    return "Address already in use" in log


def retry_on_taken_port(start: Callable[[], T], new_port: Callable[[], None] | None, attempts: int = 5) -> T:
    """`start()`; while it raises PortTaken, `new_port()` and again (a port fixed by the caller: no retry)."""
    if new_port is None:
        return start()
    for _ in range(attempts - 1):
        try:
            return start()
        except PortTaken:
            new_port()
    return start()


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONFAULTHANDLER"] = "1"
    env.update(overrides)
    return env


@dataclass
class ChildProcess:
    """A service process the tests start, with its output in a log file."""

    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class LocalAddress:
    """Something listening on 127.0.0.1:`port`, and its HTTP and WebSocket base URLs."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


# One Django process per server answers every `issue_token` the tests ask for, a request per line
# on its stdin: a `manage.py` process per token cost a second or more of CPU each, most of the
# suite's CPU time. It ends when the server stops, or with its stdin when the tests exit.
TOKEN_DESK = """
import io, json, sys
from django.core.management import call_command
for line in sys.stdin:
    out = io.StringIO()
    try:
        call_command("issue_token", *json.loads(line), stdout=out)
        print("desk:", json.dumps({"issued": out.getvalue().strip().splitlines()[-1]}), flush=True)
    except Exception as error:
        print("desk:", json.dumps({"failed": repr(error)}), flush=True)
"""


class TokenDesk:
    """An operator's `manage.py issue_token`, in one long-lived process for a server's settings."""

    def __init__(self, env: dict[str, str], prefix: tuple[str, ...] = ()) -> None:
        """`prefix`: what the command runs under (`ip netns exec <host>`, tests/support/netns.py)."""
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "manage.py", "shell", "-c", TOKEN_DESK],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()  # tests issue from several threads

    def issue(self, *args: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.lock:
            self.process.stdin.write(json.dumps(args) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
            while reply and not reply.startswith("desk: "):  # the service's own log lines
                reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError(f"the token desk exited ({self.process.poll()})")
        answer = json.loads(reply.removeprefix("desk: "))
        if "failed" in answer:
            raise RuntimeError(f"manage.py issue_token {' '.join(args)} failed: {answer['failed']}")
        return json.loads(answer["issued"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class DaphneServer(LocalAddress, ChildProcess):
    port: int = 0  # 0: a free port (another if a process takes it first); else that port, say to restart on it
    args: tuple[str, ...] = ()  # extra daphne options
    app: str = ASGI_APPLICATION

    def __post_init__(self) -> None:
        self.any_port = self.port == 0
        if self.any_port:
            self.port = free_port()
        self.desk: TokenDesk | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.desk is not None:
            self.desk.close()
            self.desk = None
        return super().stop(sig, timeout)

    def start(self, log_dir: Path) -> DaphneServer:
        return retry_on_taken_port(lambda: self._start(log_dir), self._new_port if self.any_port else None)

    def _new_port(self) -> None:
        self.port = free_port()

    def _start(self, log_dir: Path) -> DaphneServer:
        self.log_path = log_dir / f"daphne-{self.port}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                *self.args,
                # The deploy recipe's listen backlog: Twisted's default of 50 drops the SYNs of a
                # reconnect storm, and every dropped one costs its client a second.
                "-e",
                f"tcp:port={self.port}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}",
                self.app,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise (PortTaken if port_taken(self.log()) else RuntimeError)(f"daphne exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not start:\n{self.log()}")

    def issue_token(self, username: str, *extra: str) -> dict:
        """An operator's `manage.py issue_token --create` against this server's database."""
        if self.desk is None:
            self.desk = TokenDesk(self.env)
        return self.desk.issue(username, "--create", *extra)

    def issue_tokens(self, *usernames: str) -> list[dict]:
        """`issue_token --create` for each name in turn (a name twice: two devices)."""
        return [self.issue_token(username) for username in usernames]

    # --- HTTP ------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        return http_json(self.http, method, path, body, token=token, headers=headers)

    def login(self, username: str, password: str, device_id: str | None = None) -> dict:
        body = {"username": username, "password": password}
        if device_id:
            body["deviceId"] = device_id
        status, payload = self.request("POST", "/api/auth/token/", body)
        assert status == 201, payload
        return payload

    # --- WebSocket -------------------------------------------------------------

    def connect(self, token: str | None, device_id: str | None, **kwargs: Any) -> ClientConnection:
        query = "&".join(f"{k}={v}" for k, v in (("token", token), ("deviceId", device_id)) if v is not None)
        return connect(f"{self.ws}/ws/session/?{query}", open_timeout=OPEN_TIMEOUT_S, close_timeout=5, **kwargs)

    def ticket(self, token: str) -> dict:
        """POST /api/auth/ticket/: `{ticket, deviceId, expiresAt}`."""
        status, payload = self.request("POST", "/api/auth/ticket/", token=token)
        assert status == 201, payload
        return payload

    def connect_with_ticket(self, ticket: str, device_id: str | None = None) -> ClientConnection:
        query = f"ticket={ticket}" + (f"&deviceId={device_id}" if device_id else "")
        return connect(f"{self.ws}/ws/session/?{query}", open_timeout=OPEN_TIMEOUT_S, close_timeout=5)


@dataclass
class WorkerProcess(ChildProcess):
    """A `manage.py simulator_worker` process (production mode runs simulators in these)."""

    worker_id: str = ""

    def start(self, log_dir: Path) -> WorkerProcess:
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "simulator_worker"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator_worker exited early:\n{self.log()}")
            found = re.search(r"simulator worker (\S+) running", self.log())
            if found:
                self.worker_id = found.group(1)
                return self
            time.sleep(0.05)
        raise RuntimeError(f"simulator_worker did not start:\n{self.log()}")


MARKET_TYPES = ("exchange_data", "exchange_data_status", "book", "trades")


def recv_json(ws: ClientConnection, timeout: float = 30, *, ignore: tuple[str, ...] = ()) -> dict:
    """The next message, skipping those whose type is in `ignore` (say, the market stream)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if message.get("type") not in ignore:
            return message


def recv_until(
    ws: ClientConnection, kind: str, timeout: float = 30, *, ignore: tuple[str, ...] = MARKET_TYPES, **fields: Any
) -> tuple[dict, list[dict]]:
    """Read until a message of type `kind` (with these field values) arrives; return it and what came
    before, leaving out the types in `ignore` (the market stream, unless asked for)."""
    skipped: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {kind} {fields} within {timeout} s; got {skipped}")
        message = recv_json(ws, timeout=remaining)
        if message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
            return message, skipped
        if message.get("type") not in ignore:
            skipped.append(message)


def send_json(ws: ClientConnection, message: dict) -> None:
    ws.send(json.dumps(message))


def recv_until_closed(
    ws: ClientConnection, timeout: float = 30, *, ignore: tuple[str, ...] = ()
) -> tuple[list[dict], int | None]:
    """Read every message until the server closes; return them (less the `ignore` types) and the close
    code, or None for it if the server kept the socket open for `timeout` seconds."""
    from websockets.exceptions import ConnectionClosed

    received = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("type") not in ignore:
                received.append(message)
    except ConnectionClosed:
        pass
    except TimeoutError:
        return received, None
    return received, ws.close_code


def heartbeat(device_id: str, **overrides: Any) -> dict:
    message = {
        "type": "heartbeat",
        "timestamp": time.time() * 1000,
        "deviceId": device_id,
        "connectionQuality": "good",
        "sessionStatus": "active",
        "simulatorStatus": "stopped",
    }
    message.update(overrides)
    return message


def request(kind: str, device_id: str, request_id: str, **extra: Any) -> dict:
    return {"type": kind, "requestId": request_id, "timestamp": time.time() * 1000, "deviceId": device_id, **extra}


def reconnect(device_id: str, session_token: str, request_id: str) -> dict:
    return {"type": "reconnect", "requestId": request_id, "deviceId": device_id, "sessionToken": session_token}


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held (asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


async def wait_until_async(condition: Callable[[], Awaitable[object]], timeout: float, interval: float = 0.1) -> bool:
    """wait_until for a coroutine condition, without blocking the event loop between tries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(interval)
    return bool(await condition())
