"""Timeouts, expiry and shutdown: the server ends connections with a message and a documented close code."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest

from sessions_app.realtime.quality import WINDOW, QualityJudge
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
    """The server judges each beat from when beats reach it (sessions_app/realtime/quality.py, whose
    thresholds tests/sessions_app/realtime/test_connection_quality.py checks to the millisecond).
    Here, over a real socket, each judgement must be one that the gap between the beats' arrivals
    allows; the client brackets each arrival between sending the beat and reading its answer, so a
    loaded machine widens the bracket instead of failing the test, and an idle one pins the answer."""
    interval_ms = 1000
    server = make_server(WS_HEARTBEAT_INTERVAL_MS=str(interval_ms), WS_HEARTBEAT_TIMEOUT_MS="10000")
    creds = server.login("demo", "demo-password")
    judged: list[str] = []
    arrivals: list[tuple[float, float]] = []  # (earliest, latest) arrival of each beat at the server, ms
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        for pause in (0.0, 0.0, 1.5, 2.1):
            time.sleep(pause)
            sent = time.monotonic() * 1000
            send_json(ws, heartbeat(creds["deviceId"]))
            judged.append(recv_json(ws)["connectionQualityUpdate"])
            arrivals.append((sent, time.monotonic() * 1000))
    order = ["good", "degraded", "poor"]
    for n in range(1, len(arrivals)):
        gaps = [(arrivals[k][0] - arrivals[k - 1][1], arrivals[k][1] - arrivals[k - 1][0]) for k in range(1, n + 1)]
        window = gaps[-WINDOW:]
        least = quality_of(max(low for low, _ in window), interval_ms)
        most = quality_of(max(high for _, high in window), interval_ms)
        assert order.index(least) <= order.index(judged[n]) <= order.index(most), (n, judged, gaps)
    assert judged[0] == "good"  # nothing to judge yet
    assert judged[3] == "poor"  # over two beats apart whatever the load: a whole beat missed


def quality_of(gap_ms: float, interval_ms: int) -> str:
    """The judgement of a beat `gap_ms` after the one before."""
    judge = QualityJudge(interval_ms)
    judge.observe(0)
    return judge.observe(gap_ms)


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
