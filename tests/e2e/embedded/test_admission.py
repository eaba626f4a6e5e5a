"""Admission control against daphne: a handshake past WS_MAX_HANDSHAKES_IN_FLIGHT is refused at
once with `server_busy`, close 4013 and a retry slot, and gets in when it comes back; a stopping
process spreads its `shutdown` hints over the connections it holds."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request

from tests.support.liveserver import DaphneServer, heartbeat, recv_json, recv_until_closed
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def handshakes_in_flight(server: DaphneServer) -> float:
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("session_handshakes_in_flight "):
            return float(line.split()[1])
    raise AssertionError("session_handshakes_in_flight not exported")


@contextlib.contextmanager
def database_write_locked(server: DaphneServer):
    """Hold the server's SQLite write lock: its handshakes stop at attaching the session."""
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    lock = sqlite3.connect(path, timeout=5, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def test_a_handshake_past_the_in_flight_limit_is_refused_at_once_with_a_retry_slot_and_then_admitted(
    make_server: ServerFactory,
) -> None:
    server = make_server(WS_MAX_HANDSHAKES_IN_FLIGHT="1", WS_ADMISSION_MIN_RATE_PER_S="20")
    first, second = server.issue_token("admitted"), server.issue_token("refused")
    outcome: dict[str, object] = {}

    def connect_first() -> None:
        with server.connect(first["token"], first["deviceId"]) as ws:
            outcome["first"] = recv_json(ws, timeout=30)

    with database_write_locked(server):
        waiting = threading.Thread(target=connect_first)
        waiting.start()
        deadline = time.monotonic() + 10
        while handshakes_in_flight(server) < 1:
            assert time.monotonic() < deadline, "the first handshake never got under way"
            time.sleep(0.05)
        with server.connect(second["token"], second["deviceId"]) as ws:
            messages, code = recv_until_closed(ws, timeout=30)
        # At once, not after the stuck handshake: that one cannot finish while the lock is held.
        first_still_waiting = waiting.is_alive() and "first" not in outcome
    waiting.join(30)

    assert [(m["type"], m["code"]) for m in messages] == [("error", "server_busy")]
    assert code == 4013
    assert first_still_waiting
    # One in flight at (at least) 20 per second: its slot starts 50 ms out.
    assert 50 <= messages[0]["retryAfterMs"] <= 5000
    assert outcome["first"]["type"] == "connected"  # type: ignore[index]
    time.sleep(messages[0]["retryAfterMs"] / 1000)
    with server.connect(second["token"], second["deviceId"]) as ws:
        assert recv_json(ws)["type"] == "connected"


def test_a_stopping_process_spreads_its_shutdown_hints_over_the_connections_it_holds(
    make_server: ServerFactory,
) -> None:
    # 30 connections at the rate the process saw them connect (at least 10/s): well over the
    # fixed 100 ms range, at most 3 s.
    server = make_server(
        SHUTDOWN_RETRY_AFTER_MIN_MS="500",
        SHUTDOWN_RETRY_AFTER_MAX_MS="600",
        WS_ADMISSION_MIN_RATE_PER_S="10",
        WS_MAX_CONNECTIONS_PER_USER="50",
        **RELAXED_LOGIN_THROTTLE,
    )
    clients = [server.login("demo", "demo-password") for _ in range(30)]
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(server.connect(c["token"], c["deviceId"])) for c in clients]
        for ws in sockets:
            assert recv_json(ws)["type"] == "connected"
        assert server.process is not None
        server.process.terminate()
        hints = [recv_until_closed(ws)[0][0]["reconnectAfterMs"] for ws in sockets]

    assert min(hints) >= 500 and max(hints) <= 500 + 3000
    assert max(hints) > 600  # spread past the fixed range: 30 clients need more than 100 ms


def masked_text_frame(text: str) -> bytes:
    """One WebSocket text frame as a client sends it (masked, RFC 6455 5.2; under 64 KiB)."""
    payload, mask = text.encode(), os.urandom(4)
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2)
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@contextlib.contextmanager
def silent_socket(server: DaphneServer, creds: dict):
    """A connected session socket that then reads nothing: it never answers the server's close,
    so the server's drain waits for it (until autobahn drops it). It returns once its heartbeat is
    answered: the server handles a connection's messages after its handshake, so the handshake is over."""
    key = base64.b64encode(os.urandom(16)).decode()
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    raw.sendall(
        (
            f"GET /ws/session/?token={creds['token']}&deviceId={creds['deviceId']} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    received = b""
    for awaited in (b'"connected"', b'"heartbeat_ack"'):
        if awaited == b'"heartbeat_ack"':
            raw.sendall(masked_text_frame(json.dumps(heartbeat(creds["deviceId"]))))
        while awaited not in received:
            chunk = raw.recv(65536)
            assert chunk, f"closed before {awaited!r}: {received[:300]!r}"
            received += chunk
    try:
        yield raw
    finally:
        raw.close()


def readiness(server: DaphneServer) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.http}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_handshake_reaching_a_stopping_process_is_told_to_go_and_readiness_says_so(
    make_server: ServerFactory,
) -> None:
    server = make_server(SHUTDOWN_GRACE_MS="4000", SHUTDOWN_RETRY_AFTER_MIN_MS="500", SHUTDOWN_RETRY_AFTER_MAX_MS="900")
    early, late = server.issue_token("early"), server.issue_token("late")
    with silent_socket(server, early):
        assert server.process is not None
        server.process.terminate()
        # The process drains, waiting for the silent socket; it says so on /readyz.
        deadline = time.monotonic() + 30
        while readiness(server)[0] != 503:
            assert time.monotonic() < deadline, "readiness never turned 503 after SIGTERM"
            time.sleep(0.05)
        with server.connect(late["token"], late["deviceId"]) as ws:
            messages, code = recv_until_closed(ws)
        status, body = readiness(server)

    assert [m["type"] for m in messages] == ["shutdown"] and code == 4012
    assert 500 <= messages[0]["reconnectAfterMs"] <= 900
    assert status == 503 and body["checks"]["accepting"] == {"ok": False}
