"""The simulator lifecycle over a real socket against daphne (embedded default:
the server process runs the simulators itself)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from websockets.sync.client import ClientConnection

from tests.support.liveserver import (
    MARKET_TYPES,
    DaphneServer,
    heartbeat,
    reconnect,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
    wait_until,
)
from tests.support.servers import ServerFactory, database_rows, running_server

FAST_LEASES = {"SIMULATOR_LEASE_TTL_MS": "2000", "SIMULATOR_LEASE_RENEW_MS": "500", "SIMULATOR_TICK_MS": "100"}
SIMULATOR_STATUS = "SELECT status FROM simulator_app_simulator WHERE id = ?"
SIMULATOR_HOLDER = """
SELECT w.pid FROM simulator_app_simulator s JOIN simulator_app_simulatorworker w ON w.id = s.worker_id
 WHERE s.id = ? AND w.stopped_at IS NULL
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("simulators"), **FAST_LEASES) as server:
        yield server


@contextmanager
def connected_devices(server: DaphneServer, count: int) -> Iterator[list[tuple[str, ClientConnection, dict]]]:
    """`count` connections of one new user, each from its own device: (deviceId, socket, connected)."""
    username = f"sim-{uuid.uuid4().hex[:8]}"
    first = server.issue_token(username, "--password", "pw-for-tests-123")
    credentials = [first] + [server.login(username, "pw-for-tests-123") for _ in range(count - 1)]
    with ExitStack() as stack:
        devices = []
        for creds in credentials:
            ws = stack.enter_context(server.connect(creds["token"], creds["deviceId"]))
            devices.append((creds["deviceId"], ws, recv_json(ws, ignore=MARKET_TYPES)))
        yield devices


def start_and_wait_running(device_id: str, ws: ClientConnection) -> dict:
    send_json(ws, request("start_simulator", device_id, "start"))
    reply = recv_json(ws, ignore=MARKET_TYPES)
    assert reply["type"] == "simulator_started", reply
    recv_until(ws, "simulator_status_update", simulatorStatus="running")
    return reply


def test_starting_answers_starting_and_every_connection_of_the_user_sees_it_run(server: DaphneServer) -> None:
    with connected_devices(server, 2) as [(device_a, ws_a, connected_a), (device_b, ws_b, _)]:
        send_json(ws_a, request("start_simulator", device_a, "start-1"))
        reply = recv_json(ws_a, ignore=MARKET_TYPES)
        updates_a = [recv_json(ws_a, ignore=MARKET_TYPES), recv_json(ws_a, ignore=MARKET_TYPES)]
        updates_b = [recv_json(ws_b, ignore=MARKET_TYPES), recv_json(ws_b, ignore=MARKET_TYPES)]
        send_json(ws_b, heartbeat(device_b))
        ack = recv_json(ws_b, ignore=MARKET_TYPES)

    assert reply == {
        "type": "simulator_started",
        "requestId": "start-1",
        "success": True,
        "simulatorId": reply["simulatorId"],
        "status": "starting",
    }
    for updates in (updates_a, updates_b):
        assert [(u["type"], u["simulatorStatus"]) for u in updates] == [
            ("simulator_status_update", "starting"),
            ("simulator_status_update", "running"),
        ]
        assert {u["simulatorId"] for u in updates} == {reply["simulatorId"]}
        assert {u["sessionId"] for u in updates} == {connected_a["sessionId"]}
        assert all(isinstance(u["timestamp"], int) for u in updates)
    assert ack["type"] == "heartbeat_ack" and ack["simulatorStatus"] == "running"


def test_stopping_answers_and_reports_stopping_then_stopped(server: DaphneServer) -> None:
    with connected_devices(server, 1) as [(device, ws, _)]:
        started = start_and_wait_running(device, ws)
        send_json(ws, request("stop_simulator", device, "stop-1"))
        reply = recv_json(ws, ignore=MARKET_TYPES)
        updates = [recv_json(ws, ignore=MARKET_TYPES), recv_json(ws, ignore=MARKET_TYPES)]
        send_json(ws, heartbeat(device, simulatorStatus="stopped"))
        ack = recv_json(ws, ignore=MARKET_TYPES)
        send_json(ws, request("request_session_info", device, "info"))
        info = recv_json(ws, ignore=MARKET_TYPES)

    assert reply == {
        "type": "simulator_stopped",
        "requestId": "stop-1",
        "success": True,
        "simulatorId": started["simulatorId"],
        "status": "stopping",
    }
    assert [u["simulatorStatus"] for u in updates] == ["stopping", "stopped"]
    assert all(u["reason"] == "stopped by the client" for u in updates)
    assert ack["simulatorStatus"] == "stopped"
    assert info["simulatorStatus"] == "stopped" and info["simulatorId"] == started["simulatorId"]


def test_a_second_start_from_any_device_of_the_user_is_refused(server: DaphneServer) -> None:
    with connected_devices(server, 2) as [(device_a, ws_a, _), (device_b, ws_b, _)]:
        started = start_and_wait_running(device_a, ws_a)
        send_json(ws_a, request("start_simulator", device_a, "again"))
        again = recv_json(ws_a, ignore=MARKET_TYPES)
        recv_until(ws_b, "simulator_status_update", simulatorStatus="running")
        send_json(ws_b, request("start_simulator", device_b, "from-b"))
        from_b = recv_json(ws_b, ignore=MARKET_TYPES)
        send_json(ws_b, request("request_session_info", device_b, "info"))
        info = recv_json(ws_b, ignore=MARKET_TYPES)

    for refusal, request_id in ((again, "again"), (from_b, "from-b")):
        assert refusal["type"] == "error" and refusal["code"] == "simulator_already_running"
        assert refusal["requestId"] == request_id
        assert {"field": "simulatorId", "problem": started["simulatorId"]} in refusal["details"]
    assert info["simulatorId"] == started["simulatorId"] and info["simulatorStatus"] == "running"


def test_stopping_when_no_simulator_runs_is_refused_with_its_code(server: DaphneServer) -> None:
    with connected_devices(server, 1) as [(device, ws, connected)]:
        send_json(ws, request("stop_simulator", device, "nothing-to-stop"))
        refusal = recv_json(ws, ignore=MARKET_TYPES)
        send_json(ws, request("start_simulator", "someone-elses-device", "wrong-device"))
        wrong_device = recv_json(ws, ignore=MARKET_TYPES)

    assert connected["simulatorStatus"] == "stopped" and connected["simulatorId"] is None
    assert refusal["type"] == "error" and refusal["code"] == "simulator_not_running"
    assert refusal["requestId"] == "nothing-to-stop"
    assert wrong_device["code"] == "device_id_mismatch" and wrong_device["requestId"] == "wrong-device"


def simulator_status(server: DaphneServer, simulator_id: str) -> str:
    (status,) = database_rows(server, SIMULATOR_STATUS, uuid.UUID(simulator_id).hex)[0]
    return status


def simulator_holder_pid(server: DaphneServer, simulator_id: str) -> int | None:
    rows = database_rows(server, SIMULATOR_HOLDER, uuid.UUID(simulator_id).hex)
    return rows[0][0] if rows else None


def test_the_simulator_keeps_running_without_a_socket_and_a_reconnect_sees_it(server: DaphneServer) -> None:
    username = f"sim-{uuid.uuid4().hex[:8]}"
    creds = server.issue_token(username)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        first = recv_json(ws, ignore=MARKET_TYPES)
        started = start_and_wait_running(creds["deviceId"], ws)
    time.sleep(1.0)  # several ticks and lease renewals with nobody connected
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        again = recv_json(ws, ignore=MARKET_TYPES)
        send_json(ws, reconnect(creds["deviceId"], first["sessionToken"], "rc"))
        result = recv_json(ws, ignore=MARKET_TYPES)
        send_json(ws, heartbeat(creds["deviceId"], simulatorStatus="running"))
        ack = recv_json(ws, ignore=MARKET_TYPES)
        send_json(ws, request("request_session_info", creds["deviceId"], "info"))
        info = recv_json(ws, ignore=MARKET_TYPES)

    assert again["resumed"] is True and again["sessionId"] == first["sessionId"]
    assert again["simulatorStatus"] == "running" and again["simulatorId"] == started["simulatorId"]
    assert result["type"] == "reconnect_result" and result["success"] is True
    assert result["simulatorStatus"] == "running"
    assert ack["simulatorStatus"] == "running"
    assert info["simulatorStatus"] == "running" and info["simulatorId"] == started["simulatorId"]


def test_stop_session_stops_the_simulator_and_the_other_device_sees_it(server: DaphneServer) -> None:
    with connected_devices(server, 2) as [(device_a, ws_a, _), (_, ws_b, _)]:
        started = start_and_wait_running(device_a, ws_a)
        recv_until(ws_b, "simulator_status_update", simulatorStatus="running")
        send_json(ws_a, request("stop_session", device_a, "bye"))
        closing, code = recv_until_closed(ws_a, ignore=MARKET_TYPES)
        stopped, skipped = recv_until(ws_b, "simulator_status_update", simulatorStatus="stopped")

    assert closing[0] == {
        "type": "session_stopped",
        "requestId": "bye",
        "success": True,
        "message": "session stopped",
        "simulatorStopped": True,
    }
    assert code == 4010
    assert [m["simulatorStatus"] for m in skipped] == ["stopping"]
    assert stopped["simulatorId"] == started["simulatorId"]


def test_an_expired_session_stops_its_simulator(make_server: ServerFactory) -> None:
    server = make_server(SESSION_TTL_S="3", **FAST_LEASES)
    creds = server.issue_token("expiring-trader")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=MARKET_TYPES)
        started = start_and_wait_running(creds["deviceId"], ws)
        messages, code = recv_until_closed(ws, timeout=30, ignore=MARKET_TYPES)
    assert code == 4011 and messages[-1]["code"] == "session_expired"
    # Wait in the database, not on a new socket: its session has the same 3 s to live, and the stop
    # (a write to the embedded SQLite) can take longer than that on a loaded machine.
    assert wait_until(lambda: simulator_status(server, started["simulatorId"]) == "stopped", 30)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        fresh = recv_json(ws, ignore=MARKET_TYPES)
    assert fresh["resumed"] is False and fresh["simulatorStatus"] == "stopped"
    assert fresh["simulatorId"] == started["simulatorId"]


def test_a_simulator_stops_itself_once_no_client_of_its_user_is_connected(make_server: ServerFactory) -> None:
    server = make_server(SIMULATOR_IDLE_TIMEOUT_S="2", PRESENCE_FLUSH_INTERVAL_S="1", **FAST_LEASES)
    creds_a = server.issue_token("idle-trader", "--password", "pw-for-tests-123")
    creds_b = server.login("idle-trader", "pw-for-tests-123")
    with server.connect(creds_b["token"], creds_b["deviceId"]) as watcher:
        recv_json(watcher, ignore=MARKET_TYPES)
        with server.connect(creds_a["token"], creds_a["deviceId"]) as ws:
            recv_json(ws, ignore=MARKET_TYPES)
            started = start_and_wait_running(creds_a["deviceId"], ws)
        # The starting device is gone, but the user still watches from another one: no idle stop.
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            send_json(watcher, heartbeat(creds_b["deviceId"], simulatorStatus="running"))
            ack, _ = recv_until(watcher, "heartbeat_ack")
            assert ack["simulatorStatus"] == "running", ack
            time.sleep(0.5)
    # Nobody connected now: the idle timeout, the last-seen flush and the worker's idle check stop it.
    assert wait_until(lambda: simulator_status(server, started["simulatorId"]) == "stopped", 30)
    with server.connect(creds_b["token"], creds_b["deviceId"]) as ws:
        after = recv_json(ws, ignore=MARKET_TYPES)
    assert after["simulatorId"] == started["simulatorId"] and after["simulatorStatus"] == "stopped"


def test_a_restarted_server_takes_over_the_simulator_the_old_one_handed_over(make_server: ServerFactory) -> None:
    old = make_server(**FAST_LEASES)
    creds = old.issue_token("restart-trader")
    with old.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=MARKET_TYPES)
        started = start_and_wait_running(creds["deviceId"], ws)
        old.stop()  # SIGTERM: connections get `shutdown`, the in-process worker hands over
        messages, code = recv_until_closed(ws, ignore=MARKET_TYPES)
    assert [m["type"] for m in messages] == ["shutdown"] and code == 4012

    new = make_server(**FAST_LEASES)
    with new.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws, ignore=MARKET_TYPES)
        # The new process's worker polls for simulators nobody holds, and takes it.
        assert wait_until(lambda: simulator_holder_pid(new, started["simulatorId"]) == new.process.pid, 30)
        send_json(ws, request("stop_simulator", creds["deviceId"], "stop"))
        # The reply by its requestId: a push of the session stream may come first.
        reply, before_reply = recv_until(ws, "simulator_stopped", requestId="stop")
        stopped, skipped = recv_until(ws, "simulator_status_update", simulatorStatus="stopped")

    assert stopped["simulatorId"] == started["simulatorId"]
    assert connected["simulatorStatus"] == "running" and connected["simulatorId"] == started["simulatorId"]
    # `stopping` first means a worker of the new process held it and finished the stop itself.
    assert reply["success"] is True and reply["status"] == "stopping", reply
    updates = [m.get("simulatorStatus") for m in before_reply + skipped]
    assert updates == ["stopping"], before_reply + skipped
    assert "handed over 1 simulators" in old.log()
