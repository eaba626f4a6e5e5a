"""Production mode for real: PostgreSQL, channels-redis and two daphne processes.

A device's connections may land on different processes behind a proxy; replacement,
invalidation and operator actions must cross processes through the channel layer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.liveserver import (
    DaphneServer,
    heartbeat,
    manage,
    reconnect,
    recv_json,
    recv_until_closed,
    request,
    send_json,
)
from tests.support.production import production_cluster


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaphneServer, DaphneServer]]:
    with production_cluster(tmp_path_factory.mktemp("production"), {}, servers=2, workers=0) as cluster:
        manage(cluster.env, "ensure_demo_user")
        first, second = cluster.servers
        yield first, second


def test_production_refuses_plain_http_hosts_it_does_not_serve(two_servers: tuple[DaphneServer, DaphneServer]) -> None:
    first, _ = two_servers
    status, body = first.request("GET", "/api/devices/", headers={"Host": "evil.example"})
    assert status == 400 and body["type"] == "error" and body["code"] == "invalid_request"
    status, body = first.request("GET", "/api/no-such-thing/")
    assert status == 404 and body["code"] == "not_found"


def test_a_connection_on_one_process_is_replaced_by_one_on_the_other(
    two_servers: tuple[DaphneServer, DaphneServer],
) -> None:
    first, second = two_servers
    creds = first.login("demo", "demo-password")
    with first.connect(creds["token"], creds["deviceId"]) as old:
        old_connected = recv_json(old)
        with second.connect(creds["token"], creds["deviceId"]) as new:
            new_connected = recv_json(new)
            messages, code = recv_until_closed(old)
            send_json(new, request("request_session_info", creds["deviceId"], "after-replace"))
            info = recv_json(new)
    assert new_connected["sessionId"] == old_connected["sessionId"] and new_connected["resumed"] is True
    assert [m["type"] for m in messages] == ["connection_replaced"] and code == 4009
    assert info["status"] == "active" and info["sessionId"] == old_connected["sessionId"]


def test_invalidating_on_one_process_closes_the_connection_on_the_other(
    two_servers: tuple[DaphneServer, DaphneServer],
) -> None:
    first, second = two_servers
    creds = first.login("demo", "demo-password")
    with second.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, heartbeat(creds["deviceId"]))
        assert recv_json(ws)["type"] == "heartbeat_ack"
        status, _ = first.request(
            "POST", f"/api/devices/{creds['deviceId']}/invalidate/", {"reason": "stolen"}, token=creds["token"]
        )
        messages, code = recv_until_closed(ws)
    assert status == 200
    assert messages == [
        {
            "type": "device_id_invalidated",
            "deviceId": creds["deviceId"],
            "reason": "stolen",
            "timestamp": messages[0]["timestamp"],
            # Numbered in the session's stream like every push that changes the client's view.
            "sessionSeq": messages[0]["sessionSeq"],
            "sessionEpoch": messages[0]["sessionEpoch"],
        }
    ]
    assert messages[0]["sessionSeq"] >= 1
    assert code == 4003


def test_a_session_resumes_on_the_other_process_after_a_drop(two_servers: tuple[DaphneServer, DaphneServer]) -> None:
    first, second = two_servers
    creds = first.login("demo", "demo-password")
    with first.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
    with second.connect(creds["token"], creds["deviceId"]) as ws:
        again = recv_json(ws)
        send_json(ws, reconnect(creds["deviceId"], connected["sessionToken"], "r"))
        result = recv_json(ws)
    assert again["sessionId"] == connected["sessionId"]
    assert result["success"] is True and result["sessionStatus"] == "active"


def test_an_idle_connection_outlives_the_channel_layers_blocking_read(
    two_servers: tuple[DaphneServer, DaphneServer],
) -> None:
    # channels-redis blocks 5 s per receive; redis-py 8's default 5 s read timeout used to kill it.
    first, _ = two_servers
    creds = first.login("demo", "demo-password")
    with first.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        time.sleep(6.5)
        send_json(ws, heartbeat(creds["deviceId"]))
        ack = recv_json(ws)
    assert ack["type"] == "heartbeat_ack"
