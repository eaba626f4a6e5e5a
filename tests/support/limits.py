"""Helpers for the connection-limit tests: several devices of one user, sockets that must open or be refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from sessions_app.realtime.errors import CloseCode
from tests.support.liveserver import DaphneServer, recv_json, recv_until_closed

PASSWORD = "pw-for-limits-123"


def devices_of_new_user(server: DaphneServer, count: int) -> list[dict]:
    """Credentials of `count` devices of one new user."""
    username = f"trader-{uuid.uuid4().hex[:8]}"
    first = server.issue_token(username, "--password", PASSWORD)
    return [first] + [server.login(username, PASSWORD) for _ in range(count - 1)]


@contextmanager
def open_socket(server: DaphneServer, creds: dict, **kwargs: Any) -> Iterator[ClientConnection]:
    with server.connect(creds["token"], creds["deviceId"], **kwargs) as ws:
        assert recv_json(ws)["type"] == "connected"
        yield ws


def assert_too_many(server: DaphneServer, creds: dict, limit: str, **kwargs: Any) -> None:
    """The handshake is refused with `too_many_connections` naming `limit`, and closed with 4030."""
    with server.connect(creds["token"], creds["deviceId"], **kwargs) as ws:
        messages, close_code = recv_until_closed(ws)
    assert [(m["type"], m["code"]) for m in messages] == [("error", "too_many_connections")]
    assert limit in messages[0]["message"] and close_code == 4030


@contextmanager
def open_when_admitted(server: DaphneServer, creds: dict, timeout: float = 5) -> Iterator[ClientConnection]:
    """A place is freed once the server has handled a close: retry until admitted."""
    deadline = time.monotonic() + timeout
    while True:
        with server.connect(creds["token"], creds["deviceId"]) as ws:
            try:
                first = recv_json(ws)
            except ConnectionClosed as closed:
                # A refusal is its error then close 4030; a connection reset right after the close
                # can cost the client the error frame (seen once in CI): the close code says it.
                first = {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}
            if first["type"] == "connected":
                yield ws
                return
        refused = first["code"] in ("too_many_connections", CloseCode.TOO_MANY_CONNECTIONS)
        assert refused and time.monotonic() < deadline, first
        time.sleep(0.05)
