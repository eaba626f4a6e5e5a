"""After a scripted session, /metrics shows the matching counters, and only to whom it should."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.liveserver import DaphneServer, heartbeat, recv_json, recv_until, request, send_json, wait_until
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def scrape(server: DaphneServer, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"{server.http}/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (labels in any order)."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? ([0-9.e+-]+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"no sample {name} {labels}")


def scrape_once_closed(server: DaphneServer) -> str:
    """The metrics once the server has counted every close (in disconnect(), after the close handshake)."""
    text = ""

    def closed() -> bool:
        nonlocal text
        status, text = scrape(server)
        return status == 200 and sample(text, "session_connections_open") == 0

    assert wait_until(closed, 20), text
    return text


def test_a_scripted_session_shows_in_the_metrics(make_server: ServerFactory, tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    server = make_server(PROMETHEUS_MULTIPROC_DIR=str(multiproc), **RELAXED_LOGIN_THROTTLE)
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        for rtt in (12.0, 30.0, 700.0):
            send_json(ws, heartbeat(creds["deviceId"], rttMs=rtt))
            recv_json(ws)
        send_json(ws, request("stop_simulator", creds["deviceId"], "nothing"))
        recv_json(ws)
        send_json(ws, {"type": "no_such_type"})
        recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        recv_until(ws, "simulator_status_update", simulatorStatus="running")
        ticket = {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0}
        send_json(ws, request("place_order", creds["deviceId"], "order", **ticket))
        recv_until(ws, "order_placed")
        _, during = scrape(server)
    with server.connect("wrong-token", creds["deviceId"]) as refused:
        recv_json(refused)
    after = scrape_once_closed(server)

    assert sample(during, "session_connections_open") == 1 and sample(after, "session_connections_open") == 0
    assert sample(after, "session_connects_total", outcome="accepted") == 1
    assert sample(after, "session_connects_total", outcome="token_invalid") == 1
    assert sample(after, "session_messages_in_total", type="heartbeat") == 3
    assert sample(after, "session_messages_in_total", type="unknown") == 1
    assert sample(after, "session_messages_out_total", type="heartbeat_ack") == 3
    assert sample(after, "session_errors_total", code="simulator_not_running") == 1
    assert sample(after, "session_errors_total", code="unknown_type") == 1
    assert sample(after, "session_disconnects_total", code="1000") >= 1
    assert sample(after, "session_heartbeat_rtt_seconds_count") == 3
    assert sample(after, "session_heartbeat_rtt_seconds_bucket", le="0.025") == 1
    assert sample(during, "simulators", status="running") == 1
    assert sample(during, "market_orders", status="new") == 1
    assert sample(after, "market_orders_total", order_type="limit", side="buy") == 1


def test_metrics_need_the_token_when_one_is_set(make_server: ServerFactory) -> None:
    server = make_server(METRICS_TOKEN="scrape-secret-123")
    denied, body = scrape(server)
    wrong, _ = scrape(server, "nope")
    allowed, text = scrape(server, "scrape-secret-123")
    assert denied == 403 and '"code": "permission_denied"' in body.replace('":"', '": "')
    assert wrong == 403 and allowed == 200 and "session_connections_open" in text
