"""A connection that sends too fast gets `rate_limited`; one that keeps at it is closed with 4029."""

from __future__ import annotations

import pytest

from sessions_app.realtime.ratelimit import AbuseWindow, TokenBucket
from tests.support.liveserver import heartbeat, recv_json, recv_until_closed, request, send_json
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def test_the_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # one token per 100 ms
    assert [bucket.take(10.0) for _ in range(6)] == [True] * 5 + [False]  # refilled, never above the burst


def test_abuse_is_counted_within_a_sliding_window() -> None:
    window = AbuseWindow(limit=3, window_s=1.0)
    assert not window.refuse(0.0) and not window.refuse(0.5)
    assert not window.refuse(1.6)  # the first two fell out of the window
    assert not window.refuse(1.7) and window.refuse(1.8)


@pytest.mark.e2e
def test_over_the_limit_messages_are_refused_and_sustained_abuse_closes_the_connection(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        WS_RATE_LIMIT_PER_S="1", WS_RATE_LIMIT_BURST="5", WS_RATE_LIMIT_ABUSE_COUNT="10", **RELAXED_LOGIN_THROTTLE
    )
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        for n in range(5):
            send_json(ws, request("request_session_info", creds["deviceId"], f"ok-{n}"))
        answers = [recv_json(ws) for _ in range(5)]
        send_json(ws, request("request_session_info", creds["deviceId"], "too-fast"))
        refused = recv_json(ws)
        for _ in range(12):
            send_json(ws, heartbeat(creds["deviceId"]))
        messages, code = recv_until_closed(ws)

    assert [a["type"] for a in answers] == ["session_info"] * 5
    assert refused["code"] == "rate_limited" and refused["requestId"] == "too-fast"
    assert [m["code"] for m in messages if m["type"] == "error"][-1] == "rate_limit_abuse"
    assert code == 4029
