"""The production layout on separate network hosts (tests/support/netns.py): two server hosts,
two worker hosts, a Redis host, a PostgreSQL host and nginx, each a network namespace of its own,
the clients on another. The journeys run across hosts, then partitions cut real links (a switch
port taken down: no FIN, no reset) and each has the outcome docs/partitions.md documents.

Every partition test counts the numbered pushes (order and position updates, simulator status)
at every client: none may be lost and none received twice. Run with -s for the measured times."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.faults import start_simulator
from tests.support.liveserver import (
    MARKET_TYPES,
    heartbeat,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
)
from tests.support.netns import Layout, namespaced_layout

pytestmark = [pytest.mark.e2e, pytest.mark.production, pytest.mark.netns]

HEARTBEAT_INTERVAL_S, HEARTBEAT_TIMEOUT_S = 1.0, 3.0
WATCHDOG_S = 3.0
LEASE_TTL_S, LEASE_RENEW_S = 2.0, 0.5
SETTINGS = {
    "MARKET_TICK_MS": "200",
    "SIMULATOR_TICK_MS": "200",
    "SIMULATOR_LEASE_TTL_MS": str(int(LEASE_TTL_S * 1000)),
    "SIMULATOR_LEASE_RENEW_MS": str(int(LEASE_RENEW_S * 1000)),
    "SIMULATOR_ORPHAN_GRACE_MS": "6000",
    "SESSION_STREAM_CHECK_INTERVAL_S": "1",
    "SHUTDOWN_RETRY_AFTER_MIN_MS": "0",
    "SHUTDOWN_RETRY_AFTER_MAX_MS": "200",
    "REDIS_SOCKET_TIMEOUT_S": "6",
    "WS_HEARTBEAT_INTERVAL_MS": str(int(HEARTBEAT_INTERVAL_S * 1000)),
    "WS_HEARTBEAT_TIMEOUT_MS": str(int(HEARTBEAT_TIMEOUT_S * 1000)),
    "CHANNEL_LAYER_WATCHDOG_MS": str(int(WATCHDOG_S * 1000)),
    "PRESENCE_FLUSH_INTERVAL_S": "2",
}
PASSWORD = "pw-for-tests-123"
MARKET_BUY = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 1}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    with namespaced_layout(tmp_path_factory.mktemp("netns"), SETTINGS) as layout:
        yield layout


def new_user(layout: Layout, name: str) -> str:
    username = f"{name}-{int(time.monotonic() * 1000) % 10**8}"
    layout.issue_token(username, "--password", PASSWORD)
    return username


def test_a_trader_logs_in_through_the_proxy_and_trades_across_hosts(layout: Layout) -> None:
    assert layout.proxy is not None
    a, b = layout.servers
    username = new_user(layout, "journey")
    creds = layout.proxy.login(username, PASSWORD)
    start_simulator(a, creds)
    with b.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws, ignore=MARKET_TYPES)
        assert connected["type"] == "connected" and connected["simulatorStatus"] == "running"
        status, order = layout.proxy.request("POST", "/api/market/orders/", MARKET_BUY, token=creds["token"])
        assert status == 201, order
        # The order was placed through a server, filled by a worker host, told through the Redis host.
        deadline = time.monotonic() + 15
        seen: str | None = None
        while seen != "filled" and time.monotonic() < deadline:
            update, _ = recv_until(ws, "exchange_data_status", timeout=15, reason="orders_changed")
            seen = update["userOrders"].get(order["orderId"], {}).get("status")
        assert seen == "filled"
        send_json(ws, heartbeat(creds["deviceId"], simulatorStatus="running"))
        ack, _ = recv_until(ws, "heartbeat_ack")
        assert ack["simulatorStatus"] == "running"
    filled = layout.query(
        "SELECT COUNT(*) FROM market_app_fill f JOIN auth_user u ON u.id = f.user_id WHERE u.username = %s", username
    )
    assert filled == [(1,)]


def test_the_same_device_on_the_other_server_host_replaces_its_connection(layout: Layout) -> None:
    a, b = layout.servers
    username = new_user(layout, "replace")
    creds = a.login(username, PASSWORD)
    with a.connect(creds["token"], creds["deviceId"]) as old:
        old_connected = recv_json(old, ignore=MARKET_TYPES)
        with b.connect(creds["token"], creds["deviceId"]) as new:
            new_connected = recv_json(new, ignore=MARKET_TYPES)
            messages, code = recv_until_closed(old, ignore=MARKET_TYPES)
            send_json(new, request("request_session_info", creds["deviceId"], "after-replace"))
            info, _ = recv_until(new, "session_info", requestId="after-replace")
    assert new_connected["sessionId"] == old_connected["sessionId"] and new_connected["resumed"] is True
    assert [m["type"] for m in messages] == ["connection_replaced"] and code == 4009
    assert info["status"] == "active"
