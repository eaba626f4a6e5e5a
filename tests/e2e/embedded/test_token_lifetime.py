"""Access tokens on long connections, against daphne: a token that expires or is revoked while its
socket is open ends that socket (4001), and `refresh_token` renews it in-band (docs/protocol.md section 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.sync.client import ClientConnection

from tests.support.liveserver import DaphneServer, heartbeat, recv_json, recv_until_closed, request, send_json

# Maintenance ticks once a second at most: the bound within which an expired token's socket ends.
EXPIRY_BOUND_S = 2.5
TTL_S = 5  # short, but long enough to open a socket on it first, most of the time


@contextmanager
def socket_on_a_short_lived_token(server: DaphneServer, username: str) -> Iterator[tuple[dict, ClientConnection]]:
    """A socket opened on a token that lives TTL_S seconds: the token and the socket. A token that ran
    out before its socket opened (seconds pass quickly on a loaded machine) is replaced by another."""
    for _ in range(5):
        issued = server.issue_token(username, "--password", f"pw-{username}-1", "--ttl", str(TTL_S))
        ws = server.connect(issued["token"], issued["deviceId"])
        first = recv_json(ws)
        if first["type"] == "connected":
            assert first["tokenExpiresAt"] == issued["expiresAt"]
            with ws:
                yield issued, ws
            return
        ws.close()
        assert first.get("code") == "token_expired", first
    raise AssertionError(f"five tokens of {TTL_S} s ran out before their sockets opened")


def test_a_token_that_expires_on_an_open_socket_ends_it_with_token_expired(shared_server: DaphneServer) -> None:
    with socket_on_a_short_lived_token(shared_server, "expiring") as (issued, ws):
        messages, code = recv_until_closed(ws, timeout=TTL_S + 30)
        closed_at_ms = time.time() * 1000

    assert [m["code"] for m in messages if m["type"] == "error"] == ["token_expired"]
    assert code == 4001
    assert closed_at_ms >= issued["expiresAt"]  # not before its time


def test_revoking_a_token_ends_the_socket_living_on_it(shared_server: DaphneServer) -> None:
    issued = shared_server.issue_token("revoking", "--password", "pw-revoking-1")
    with shared_server.connect(issued["token"], issued["deviceId"]) as ws:
        recv_json(ws)
        status, _ = shared_server.request("POST", "/api/auth/token/revoke/", token=issued["token"])
        messages, code = recv_until_closed(ws, timeout=30)

    assert status == 204
    assert [m["code"] for m in messages if m["type"] == "error"] == ["token_revoked"]
    assert code == 4001


def test_a_refreshed_socket_lives_on_the_new_token(shared_server: DaphneServer) -> None:
    with socket_on_a_short_lived_token(shared_server, "refreshing") as (issued, ws):
        device_id = issued["deviceId"]
        send_json(ws, request("refresh_token", device_id, "renew-1"))
        refreshed = recv_json(ws)
        send_json(ws, request("refresh_token", device_id, "renew-2"))
        too_soon = recv_json(ws)
        # Revoking the first token no longer concerns this socket.
        revoked, _ = shared_server.request("POST", "/api/auth/token/revoke/", token=issued["token"])
        send_json(ws, heartbeat(device_id))
        after_revoke = recv_json(ws)
        # Past the first token's expiry, and the time the server takes to end a socket living on it.
        time.sleep(max(0.0, issued["expiresAt"] / 1000 - time.time()) + EXPIRY_BOUND_S)
        send_json(ws, heartbeat(device_id))
        after_expiry = recv_json(ws)
    status, devices = shared_server.request("GET", "/api/devices/", token=refreshed["token"])

    assert refreshed["type"] == "token_refreshed" and refreshed["requestId"] == "renew-1"
    assert refreshed["token"] != issued["token"] and refreshed["expiresAt"] > issued["expiresAt"]
    assert too_soon["type"] == "error" and too_soon["code"] == "rate_limited"
    assert revoked == 204
    assert after_revoke["type"] == "heartbeat_ack" and after_expiry["type"] == "heartbeat_ack"
    assert status == 200 and any(d["deviceId"] == device_id for d in devices)
