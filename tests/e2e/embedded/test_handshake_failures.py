"""A failed handshake is accepted, told why with the standard `error`, and closed with 4001 or 4003."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.liveserver import DaphneServer, recv_until_closed


def assert_refused(server: DaphneServer, token: str | None, device_id: str | None, code: str, close: int) -> None:
    with server.connect(token, device_id) as ws:
        messages, close_code = recv_until_closed(ws)
    # Flaky now and then: nothing received though the server logged the refusal. Say how it closed.
    assert len(messages) == 1, (messages, close_code, server.log()[-3000:])
    assert messages[0]["type"] == "error" and messages[0]["code"] == code and messages[0]["requestId"] is None
    assert close_code == close


def test_a_missing_token_closes_with_4001(shared_server: DaphneServer) -> None:
    assert_refused(shared_server, None, "any-device", "token_missing", 4001)


def test_an_unknown_token_closes_with_4001(shared_server: DaphneServer) -> None:
    assert_refused(shared_server, "not-a-real-token", "any-device", "token_invalid", 4001)


def test_an_expired_token_closes_with_4001(shared_server: DaphneServer) -> None:
    creds = shared_server.issue_token("expiring-trader", "--ttl", "1")
    time.sleep(1.2)
    assert_refused(shared_server, creds["token"], creds["deviceId"], "token_expired", 4001)


def test_a_revoked_token_closes_with_4001(shared_server: DaphneServer) -> None:
    creds = shared_server.login("demo", "demo-password")
    status, _ = shared_server.request("POST", "/api/auth/token/revoke/", {}, token=creds["token"])
    assert status == 204
    assert_refused(shared_server, creds["token"], creds["deviceId"], "token_revoked", 4001)


def test_a_missing_device_id_closes_with_4003(shared_server: DaphneServer) -> None:
    creds = shared_server.login("demo", "demo-password")
    assert_refused(shared_server, creds["token"], None, "device_id_missing", 4003)


def test_an_unknown_device_closes_with_4003(shared_server: DaphneServer) -> None:
    creds = shared_server.login("demo", "demo-password")
    assert_refused(shared_server, creds["token"], "never-registered", "device_unknown", 4003)


def test_another_users_device_closes_with_4003(shared_server: DaphneServer) -> None:
    mine = shared_server.login("demo", "demo-password")
    theirs = shared_server.issue_token("other-trader")
    assert_refused(shared_server, mine["token"], theirs["deviceId"], "device_mismatch", 4003)


def test_an_invalidated_device_closes_with_4003(shared_server: DaphneServer) -> None:
    creds = shared_server.login("demo", "demo-password")
    status, _ = shared_server.request("POST", f"/api/devices/{creds['deviceId']}/invalidate/", {}, token=creds["token"])
    assert status == 200
    assert_refused(shared_server, creds["token"], creds["deviceId"], "device_invalidated", 4003)


def test_a_disallowed_origin_is_refused_at_the_handshake(shared_server: DaphneServer) -> None:
    creds = shared_server.login("demo", "demo-password")
    with pytest.raises(InvalidStatus) as refused:
        shared_server.connect(creds["token"], creds["deviceId"], origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with shared_server.connect(
        creds["token"], creds["deviceId"], origin=f"http://localhost:{shared_server.port}"
    ) as ws:
        assert '"connected"' in ws.recv(timeout=10)
