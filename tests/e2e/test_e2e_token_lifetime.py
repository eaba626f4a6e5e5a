"""Access tokens on long connections, against daphne: a token that expires or is revoked while its
socket is open ends that socket (4001), and `refresh_token` renews it in-band (docs/protocol.md section 2)."""

from __future__ import annotations

import time

import pytest

from tests.support.liveserver import DaphneServer, heartbeat, recv_json, recv_until_closed, request, send_json

pytestmark = pytest.mark.e2e

# Maintenance ticks once a second at most: the bound within which an expired token's socket ends.
EXPIRY_BOUND_S = 2.5


def test_a_token_that_expires_on_an_open_socket_ends_it_with_token_expired(shared_server: DaphneServer) -> None:
    issued = shared_server.issue_token("expiring", "--password", "pw-expiring-1", "--ttl", "2")
    with shared_server.connect(issued["token"], issued["deviceId"]) as ws:
        connected = recv_json(ws)
        started = time.monotonic()
        messages, code = recv_until_closed(ws, timeout=10)

    assert connected["tokenExpiresAt"] == issued["expiresAt"]
    assert [m["code"] for m in messages if m["type"] == "error"] == ["token_expired"]
    assert code == 4001
    assert time.monotonic() - started < 2 + EXPIRY_BOUND_S


def test_revoking_a_token_ends_the_socket_living_on_it(shared_server: DaphneServer) -> None:
    issued = shared_server.issue_token("revoking", "--password", "pw-revoking-1")
    with shared_server.connect(issued["token"], issued["deviceId"]) as ws:
        recv_json(ws)
        status, _ = shared_server.request("POST", "/api/auth/token/revoke/", token=issued["token"])
        messages, code = recv_until_closed(ws, timeout=5)

    assert status == 204
    assert [m["code"] for m in messages if m["type"] == "error"] == ["token_revoked"]
    assert code == 4001


def test_a_refreshed_socket_lives_on_the_new_token(shared_server: DaphneServer) -> None:
    issued = shared_server.issue_token("refreshing", "--password", "pw-refreshing-1", "--ttl", "3")
    device_id = issued["deviceId"]
    with shared_server.connect(issued["token"], device_id) as ws:
        recv_json(ws)
        send_json(ws, request("refresh_token", device_id, "renew-1"))
        refreshed = recv_json(ws)
        send_json(ws, request("refresh_token", device_id, "renew-2"))
        too_soon = recv_json(ws)
        # Revoking the first token no longer concerns this socket.
        revoked, _ = shared_server.request("POST", "/api/auth/token/revoke/", token=issued["token"])
        send_json(ws, heartbeat(device_id))
        after_revoke = recv_json(ws)
        time.sleep(3 + EXPIRY_BOUND_S)  # past the first token's expiry
        send_json(ws, heartbeat(device_id))
        after_expiry = recv_json(ws)
    status, devices = shared_server.request("GET", "/api/devices/", token=refreshed["token"])

    assert refreshed["type"] == "token_refreshed" and refreshed["requestId"] == "renew-1"
    assert refreshed["token"] != issued["token"] and refreshed["expiresAt"] > issued["expiresAt"]
    assert too_soon["type"] == "error" and too_soon["code"] == "rate_limited"
    assert revoked == 204
    assert after_revoke["type"] == "heartbeat_ack" and after_expiry["type"] == "heartbeat_ack"
    assert status == 200 and any(d["deviceId"] == device_id for d in devices)
