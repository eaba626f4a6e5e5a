"""Timeouts, expiry and shutdown: the server ends connections with a message and a documented close code."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest

from tests.support.liveserver import free_port, heartbeat, recv_json, recv_until_closed, send_json, wait_until
from tests.support.servers import ServerFactory


def test_a_silent_connection_gets_timeout_and_4008_while_a_beating_one_stays(make_server: ServerFactory) -> None:
    # The beating socket beats ten times per timeout: only a stall of the whole 2 s would starve it.
    server = make_server(WS_HEARTBEAT_INTERVAL_MS="200", WS_HEARTBEAT_TIMEOUT_MS="2000")
    quiet = server.login("demo", "demo-password")
    busy = server.login("demo", "demo-password")
    with (
        server.connect(quiet["token"], quiet["deviceId"]) as silent,
        server.connect(busy["token"], busy["deviceId"]) as beating,
    ):
        assert recv_json(silent)["heartbeatTimeout"] == 2000
        recv_json(beating)
        acks, messages, code = [], [], None
        deadline = time.monotonic() + 30
        while code is None:
            assert time.monotonic() < deadline, f"the silent connection was never timed out: {messages}"
            send_json(beating, heartbeat(busy["deviceId"]))
            acks.append(recv_json(beating))
            received, code = recv_until_closed(silent, timeout=0.2)
            messages += received
    assert all(ack["type"] == "heartbeat_ack" for ack in acks)
    assert [m["type"] for m in messages] == ["timeout"]
    assert messages[0]["timeoutMs"] == 2000 and code == 4008


def test_a_late_heartbeat_is_judged_degraded_then_poor(make_server: ServerFactory) -> None:
    # A beat is asked for every second. The pauses make each gap at least that long; a loaded
    # machine can only lengthen them, and the judgement needs a stall of over a second (good) or
    # half a second (degraded) to change.
    server = make_server(WS_HEARTBEAT_INTERVAL_MS="1000", WS_HEARTBEAT_TIMEOUT_MS="10000")
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        judged = []
        for pause in (0.0, 0.0, 1.5, 2.1):
            time.sleep(pause)
            send_json(ws, heartbeat(creds["deviceId"]))
            judged.append(recv_json(ws)["connectionQualityUpdate"])
    assert judged[:2] == ["good", "good"]
    assert judged[2] == "degraded"  # a gap of 1.5 beats: half a beat late
    assert judged[3] == "poor"  # a whole beat missed


def test_an_expired_session_closes_with_4011_and_the_next_connection_gets_a_new_session(
    make_server: ServerFactory,
) -> None:
    server = make_server(SESSION_TTL_S="2")
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        first = recv_json(ws)
        messages, code = recv_until_closed(ws, timeout=30)
    assert [(m["type"], m["code"]) for m in messages] == [("error", "session_expired")]
    assert code == 4011
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        second = recv_json(ws)
    assert second["sessionId"] != first["sessionId"] and second["resumed"] is False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_tells_every_connection_to_come_back_later_and_closes_with_4012(
    make_server: ServerFactory, stop_signal: signal.Signals
) -> None:
    server = make_server(SHUTDOWN_RETRY_AFTER_MIN_MS="500", SHUTDOWN_RETRY_AFTER_MAX_MS="1500")
    clients = [server.login("demo", "demo-password") for _ in range(3)]
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(server.connect(c["token"], c["deviceId"])) for c in clients]
        for ws in sockets:
            recv_json(ws)
        assert server.process is not None
        server.process.send_signal(stop_signal)
        results = [recv_until_closed(ws) for ws in sockets]
    assert server.process.wait(15) == 0
    for messages, code in results:
        assert [m["type"] for m in messages] == ["shutdown"]
        assert 500 <= messages[0]["reconnectAfterMs"] <= 1500
        assert code == 4012


def test_last_seen_times_reach_the_database_in_batches(make_server: ServerFactory) -> None:
    server = make_server(PRESENCE_FLUSH_INTERVAL_S="1")
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        time.sleep(0.2)
        send_json(ws, heartbeat(creds["deviceId"]))
        beat_at = recv_json(ws)["timestamp"]

        def last_seen() -> float:
            devices = {d["deviceId"]: d for d in server.request("GET", "/api/devices/", token=creds["token"])[1]}
            return devices[creds["deviceId"]]["lastSeenAt"]

        # The heartbeat's time, not the connect's (200 ms earlier), once a batch has been flushed.
        assert wait_until(lambda: last_seen() >= beat_at - 50, 30), (last_seen(), beat_at)


def test_an_unknown_websocket_path_is_refused_at_the_handshake(make_server: ServerFactory) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    server = make_server()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws}/ws/elsewhere/", open_timeout=5)
    assert refused.value.response.status_code == 403


def test_an_unreachable_channel_layer_refuses_the_connection_with_4013_not_a_crash(make_server: ServerFactory) -> None:
    server = make_server(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    creds = server.issue_token("layerless-trader")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        messages, code = recv_until_closed(ws, timeout=20)
    assert [(m["type"], m["code"]) for m in messages] == [("error", "service_unavailable")]
    assert code == 4013
