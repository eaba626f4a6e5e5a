"""A connection that sends too fast gets `rate_limited`; one that keeps at it is closed with 4029."""

from __future__ import annotations

import contextlib

from websockets.exceptions import ConnectionClosed

from tests.support.liveserver import heartbeat, recv_json, recv_until_closed, request, send_json
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def test_over_the_limit_messages_are_refused_and_sustained_abuse_closes_the_connection(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        WS_RATE_LIMIT_PER_S="1", WS_RATE_LIMIT_BURST="5", WS_RATE_LIMIT_ABUSE_COUNT="10", **RELAXED_LOGIN_THROTTLE
    )
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        # Ten at once against a burst of five refilled at one a second: only a stall of five
        # seconds in the server could let them all in.
        for n in range(10):
            send_json(ws, request("request_session_info", creds["deviceId"], f"ask-{n}"))
        answers = [recv_json(ws) for _ in range(10)]
        with contextlib.suppress(ConnectionClosed):  # closed for abuse while these are still going out
            for _ in range(30):
                send_json(ws, heartbeat(creds["deviceId"]))
        messages, code = recv_until_closed(ws, timeout=30)

    assert [a["type"] for a in answers[:5]] == ["session_info"] * 5
    refused = [a for a in answers if a["type"] == "error"]
    assert refused and all(a["code"] == "rate_limited" for a in refused)
    assert {a["requestId"] for a in answers} == {f"ask-{n}" for n in range(10)}  # refusals echo theirs
    assert [m["code"] for m in messages if m["type"] == "error"][-1] == "rate_limit_abuse"
    assert code == 4029
