"""Run the real service (daphne in a subprocess) for end-to-end tests, and talk to it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
ASGI_APPLICATION = "config.asgi:application"
LISTEN_BACKLOG = 1024


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
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@dataclass
class DaphneServer(LocalAddress, ChildProcess):
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()  # extra daphne options
    app: str = ASGI_APPLICATION

    def start(self, log_dir: Path) -> DaphneServer:
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not start:\n{self.log()}")

    def issue_token(self, username: str, *extra: str) -> dict:
        """An operator's `manage.py issue_token` against this server's database."""
        return json.loads(manage(self.env, "issue_token", username, "--create", *extra).strip().splitlines()[-1])

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
        return connect(f"{self.ws}/ws/session/?{query}", open_timeout=10, close_timeout=5, **kwargs)

    def ticket(self, token: str) -> dict:
        """POST /api/auth/ticket/: `{ticket, deviceId, expiresAt}`."""
        status, payload = self.request("POST", "/api/auth/ticket/", token=token)
        assert status == 201, payload
        return payload

    def connect_with_ticket(self, ticket: str, device_id: str | None = None) -> ClientConnection:
        query = f"ticket={ticket}" + (f"&deviceId={device_id}" if device_id else "")
        return connect(f"{self.ws}/ws/session/?{query}", open_timeout=10, close_timeout=5)


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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator_worker exited early:\n{self.log()}")
            found = re.search(r"simulator worker (\S+) running", self.log())
            if found:
                self.worker_id = found.group(1)
                return self
            time.sleep(0.05)
        raise RuntimeError(f"simulator_worker did not start:\n{self.log()}")


MARKET_TYPES = ("exchange_data", "exchange_data_status")


def recv_json(ws: ClientConnection, timeout: float = 10, *, ignore: tuple[str, ...] = ()) -> dict:
    """The next message, skipping those whose type is in `ignore` (say, the market stream)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if message.get("type") not in ignore:
            return message


def recv_until(
    ws: ClientConnection, kind: str, timeout: float = 10, *, ignore: tuple[str, ...] = MARKET_TYPES, **fields: Any
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
    ws: ClientConnection, timeout: float = 10, *, ignore: tuple[str, ...] = ()
) -> tuple[list[dict], int | None]:
    """Read every message until the server closes; return them (less the `ignore` types) and the close code."""
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
