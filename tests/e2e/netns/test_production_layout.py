"""The production layout on separate network hosts (tests/support/netns.py): two server hosts,
two worker hosts, a Redis host, a PostgreSQL host and nginx, each a network namespace of its own,
the clients on another. The journeys run across hosts, then partitions cut real links (a switch
port taken down: no FIN, no reset) and each has the outcome docs/partitions.md documents.

Every partition test counts the numbered pushes (order and position updates, simulator status)
at every client: none may be lost and none received twice. Run with -s for the measured times."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.faults import Trader, Trading, start_simulator
from tests.support.liveserver import (
    MARKET_TYPES,
    heartbeat,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
)
from tests.support.netns import (
    PREFIX,
    HostTrader,
    Layout,
    ServerHost,
    ip,
    namespaced_layout,
    require_netns,
    sweep_stale_namespaces,
    wait_for,
)

HEARTBEAT_INTERVAL_S, HEARTBEAT_TIMEOUT_S = 1.0, 3.0
# A client gives up on a silent socket a little after the server would have (so the server's
# heartbeat timeout, not the client's reconnect, frees the connection it held).
CLIENT_SILENCE_S = HEARTBEAT_TIMEOUT_S + 2 * HEARTBEAT_INTERVAL_S
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


def test_namespaces_a_killed_run_left_behind_are_swept_and_a_live_runs_are_kept() -> None:
    require_netns()
    dead_pid = _exited_pid()
    stale, live = f"{PREFIX}{dead_pid}-0000-probe", f"{PREFIX}{os.getpid()}-0000-probe"
    try:
        for name in (stale, live):
            ip("netns", "add", name)
        # A process inside, as a killed run leaves its servers: the sweep ends it too.
        sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "60"])
        assert wait_for(lambda: ip("netns", "pids", stale).stdout.strip(), 5) is not None
        swept = sweep_stale_namespaces()
        remaining = ip("netns", "list").stdout
        sleeper.wait(10)
    finally:
        for name in (stale, live):
            ip("netns", "del", name, check=False)
    assert stale in swept and stale not in remaining
    assert live not in swept and live in remaining


def _exited_pid() -> int:
    """The pid of a process that has exited (a test run that was killed)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


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


# --- Partitions ---------------------------------------------------------------------------------


def traders_for(layout: Layout, name: str, *, users: int = 2, devices: int = 3) -> tuple[list[Trader], dict[str, str]]:
    """Users with a running simulator, each with `devices` traders: the first two on server hosts
    a and b directly, the rest through nginx. Returns them and a token per user."""
    assert layout.proxy is not None
    a, b = layout.servers
    traders: list[Trader] = []
    tokens: dict[str, str] = {}
    for u in range(users):
        username = new_user(layout, f"{name}{u}")
        creds = [a.login(username, PASSWORD) for _ in range(devices)]
        start_simulator(b, creds[0])
        tokens[username] = creds[0]["token"]
        for d, device in enumerate(creds):
            servers = [a, b] if d < 2 else [layout.proxy]
            trader = HostTrader(
                f"{username}/{d}", device, servers, home=d % 2 if d < 2 else 0,  # type: ignore[arg-type]
                network=layout.network, silence_timeout_s=CLIENT_SILENCE_S,
            )  # fmt: skip
            traders.append(trader.start())
    return traders, tokens


def assert_nothing_lost_or_doubled(layout: Layout, traders: list[Trader], placed: dict[str, list[str]]) -> int:
    """Every order reached every client of its user filled; no numbered push twice, none held
    behind a hole; and each client has every push of its stream's epoch since it first connected."""
    for trader in traders:  # a push may wait behind one still on its way, not for good
        orders = placed[trader.name.split("/")[0]]
        settled = wait_for(lambda t=trader, o=orders: set(t.view_of(o).values()) == {"filled"} and not t.held, 60)
        assert settled is not None, (trader.name, trader.view_of(orders), sorted(trader.held), trader.errors)
    sessions = dict(
        layout.query(
            "SELECT d.device_id, s.id::text FROM sessions_app_tradingsession s"
            " JOIN sessions_app_device d ON d.id = s.device_id WHERE s.status = 'active'"
        )
    )
    checked = 0
    for trader in traders:
        doubled = {key: n for key, n in trader.received.items() if n > 1}
        assert not doubled, (trader.name, doubled)
        epoch, head = layout.stream_head(sessions[trader.creds["deviceId"]])
        assert trader.first_position is not None and trader.first_position[0] == epoch, trader.name
        last = (epoch, head)  # numbered, perhaps still on its way
        wait_for(lambda t=trader, last=last: last[1] == t.first_position[1] or last in t.received, 20)
        received = sorted(seq for e, seq in trader.received if e == epoch)
        assert received == list(range(trader.first_position[1] + 1, head + 1)), (trader.name, received, head)
        checked += sum(trader.received.values())
    return checked


def stop_all(traders: list[Trader]) -> None:
    for trader in traders:
        trader.stop()


def test_clients_cut_from_a_server_host_are_freed_by_the_heartbeat_timeout_and_recover_elsewhere(
    layout: Layout,
) -> None:
    a, b = layout.servers
    traders, tokens = traders_for(layout, "cut-clients")
    try:
        on_a_before = layout.metric("a", "session_connections_open")
        timeouts_before = layout.metric("a", "session_messages_out_total", type="timeout")
        direct_on_a = [t for t in traders if t.servers[t.current] is a]
        trading = Trading(b, tokens, count=10, pause_s=0.2, join_timeout_s=60)
        time.sleep(0.6)
        with layout.network.partitioned("a", "front"):
            cut_at = time.monotonic()
            freed_in = wait_for(lambda: layout.metric("a", "session_connections_open") == 0, 20)
            assert wait_for(lambda: all(t.recoveries for t in direct_on_a), 20) is not None
            moved = [t for t in traders if t.silent_drops]  # the direct ones, and those nginx had sent to a
            recovered_in = wait_for(lambda: all(t.recoveries for t in moved), 20)
        healed_at = time.monotonic()
        placed = trading.finish()
        checked = assert_nothing_lost_or_doubled(layout, traders, placed)
        # Each was told `timeout` (close 4008) into the void; the close handshake never completes (1006).
        timeouts = layout.metric("a", "session_messages_out_total", type="timeout") - timeouts_before
        # Healed, server host a takes clients again.
        creds = a.login(next(iter(tokens)), PASSWORD)
        with a.connect(creds["token"], creds["deviceId"]) as ws:
            assert recv_json(ws, ignore=MARKET_TYPES)["type"] == "connected"
        serving_again_in = time.monotonic() - healed_at
    finally:
        stop_all(traders)
    assert on_a_before >= 2 and freed_in is not None, (on_a_before, freed_in)
    assert timeouts >= 2, timeouts
    assert len(moved) >= 2 and recovered_in is not None, [(t.name, t.errors) for t in moved]
    assert all(r.recovered for t in moved for r in t.recoveries), [(t.name, t.recoveries) for t in moved]
    detected = max(r.closed_at - cut_at for t in moved for r in t.recoveries)
    recovered = max(r.recovered_at - cut_at for t in moved for r in t.recoveries)
    print(
        f"\npartition clients|a: {len(moved)} clients gave up on the silent socket within {detected:.2f} s and"
        f" recovered on another host within {recovered:.2f} s; a freed its {on_a_before:.0f} connections in"
        f" {freed_in:.2f} s ({timeouts:.0f} heartbeat timeouts); healed, a admits in {serving_again_in:.2f} s;"
        f" {checked} pushes, none lost or doubled"
    )


def handshake_outcome(server: ServerHost, creds: dict) -> tuple[str, int | None]:
    """What a new connection to `server` gets first: (`connected` or the error's code, the close code)."""
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        first = recv_json(ws, ignore=MARKET_TYPES)
        if first["type"] == "connected":
            return "connected", None
        _, code = recv_until_closed(ws, timeout=5)
        return first.get("code", first["type"]), code


def test_a_server_host_cut_from_redis_sends_its_clients_elsewhere_and_serves_again_once_healed(
    layout: Layout,
) -> None:
    a, b = layout.servers
    traders, tokens = traders_for(layout, "cut-redis")
    probe = a.login(next(iter(tokens)), PASSWORD)  # a device of its own for handshakes to a
    try:
        trips_before = layout.metric("a", "channel_layer_watchdog_trips_total", via="db")
        direct_on_a = [t for t in traders if t.servers[t.current] is a]
        trading = Trading(b, tokens, count=10, pause_s=0.2, join_timeout_s=60)
        time.sleep(0.6)
        with layout.network.partitioned("a", "redis"):
            cut_at = time.monotonic()
            told_in = wait_for(lambda: all(t.types_seen["shutdown"] for t in direct_on_a), WATCHDOG_S + 10)
            freed_in = wait_for(lambda: layout.metric("a", "session_connections_open", via="db") == 0, 10)
            moved = [t for t in traders if t.types_seen["shutdown"]]
            recovered_in = wait_for(lambda: all(t.recoveries for t in moved), 20)
            refused = handshake_outcome(a, probe)
            ready_status, ready = layout.ready("a", via="db")
            time.sleep(max(0.0, cut_at + WATCHDOG_S + 3 - time.monotonic()))
        serving_again_in = wait_for(lambda: handshake_outcome(a, probe)[0] == "connected", 40, interval=0.5)
        placed = trading.finish()
        checked = assert_nothing_lost_or_doubled(layout, traders, placed)
        trips = layout.metric("a", "channel_layer_watchdog_trips_total", via="db") - trips_before
        ready_again = layout.ready("a", via="db")[0]
    finally:
        stop_all(traders)
    assert told_in is not None, [(t.name, t.types_seen, t.closes) for t in direct_on_a]
    assert freed_in is not None and recovered_in is not None, (
        freed_in, recovered_in, [(t.name, t.closes, t.recoveries, t.errors) for t in moved],
    )  # fmt: skip
    assert all(t.closes[0] == 4012 and t.recoveries[0].recovered for t in moved), [(t.name, t.closes) for t in moved]
    assert len(moved) >= len(direct_on_a) >= 2
    assert refused == ("service_unavailable", 4013), refused
    assert ready_status == 503 and not ready["checks"]["channelLayer"]["ok"], ready
    assert trips == 1, trips
    assert serving_again_in is not None and ready_again == 200  # no restart: the same process
    assert a.process is not None and a.process.poll() is None
    recovered = max(r.recovered_at - cut_at for t in moved for r in t.recoveries)
    print(
        f"\npartition a|redis: a told its clients `shutdown` within {told_in:.2f} s (watchdog {WATCHDOG_S:.0f} s),"
        f" all {len(moved)} recovered elsewhere within {recovered:.2f} s of the cut;"
        f" healed, a admits again after {serving_again_in:.2f} s; {checked} pushes, none lost or doubled"
    )


def test_a_server_host_cut_from_postgresql_refuses_with_the_documented_codes_and_heals_by_itself(
    layout: Layout,
) -> None:
    a, b = layout.servers
    traders, tokens = traders_for(layout, "cut-pg")
    username = next(iter(tokens))
    creds = a.login(username, PASSWORD)
    probe = a.login(username, PASSWORD)
    try:
        trading = Trading(b, tokens, count=10, pause_s=0.2, join_timeout_s=60)
        with a.connect(creds["token"], creds["deviceId"]) as ws:
            recv_until(ws, "exchange_data_status", reason="connected")
            with layout.network.partitioned("a", "db"):
                cut_at = time.monotonic()
                send_json(ws, request("request_session_info", creds["deviceId"], "during"))
                error, _ = recv_until(ws, "error", timeout=30, requestId="during")
                answered_in = time.monotonic() - cut_at
                send_json(ws, heartbeat(creds["deviceId"], simulatorStatus="running"))
                ack, _ = recv_until(ws, "heartbeat_ack")
                order_status, order_error = a.request("POST", "/api/market/orders/", MARKET_BUY, token=creds["token"])
                refusal = handshake_outcome(a, probe)
                ready_status, ready = layout.ready("a")
                time.sleep(max(0.0, cut_at + 6 - time.monotonic()))
            healed_at = time.monotonic()

            def places_an_order() -> bool:
                status, _ = a.request("POST", "/api/market/orders/", MARKET_BUY, token=creds["token"])
                return status == 201

            healed_in = wait_for(places_an_order, 40, interval=0.5)
            admits = handshake_outcome(a, probe)
        placed = trading.finish()
        # The traders on a kept their sockets and got every push meanwhile (they need no database).
        checked = assert_nothing_lost_or_doubled(layout, traders, placed)
    finally:
        stop_all(traders)
    assert (error["code"], error["requestId"]) == ("service_unavailable", "during")
    assert ack["type"] == "heartbeat_ack"
    assert order_status == 503 and order_error["code"] == "service_unavailable"
    assert refusal == ("service_unavailable", 4013), refusal
    assert ready_status == 503 and not ready["checks"]["database"]["ok"], ready
    assert healed_in is not None and admits == ("connected", None)
    assert all(not t.recoveries for t in traders), [(t.name, t.closes) for t in traders]
    assert a.process is not None and a.process.poll() is None
    print(
        f"\npartition a|postgresql: a request answered service_unavailable {answered_in:.2f} s after the cut,"
        f" heartbeats answered, handshakes refused 4013; healed, orders placed on a again after {healed_in:.2f} s"
        f" ({time.monotonic() - healed_at:.1f} s with the checks); no socket dropped; {checked} pushes, none lost"
        " or doubled"
    )


SIMULATOR_ROW = "SELECT s.worker_id, s.lease_epoch FROM simulator_app_simulator s JOIN auth_user u ON u.id = s.user_id"
FILLS_PER_ORDER = """
SELECT o.id, COUNT(f.id) FROM market_app_order o JOIN auth_user u ON u.id = o.user_id
  LEFT JOIN market_app_fill f ON f.order_id = o.id WHERE u.username = %s GROUP BY o.id
"""
NET_FILLS_AND_POSITIONS = """
SELECT
  (SELECT COALESCE(SUM(CASE WHEN f.side = 'buy' THEN f.quantity ELSE -f.quantity END), 0)
     FROM market_app_fill f JOIN auth_user u ON u.id = f.user_id WHERE u.username = %s),
  (SELECT COALESCE(SUM(p.quantity), 0)
     FROM market_app_position p JOIN auth_user u ON u.id = p.user_id WHERE u.username = %s)
"""


def test_a_worker_host_cut_from_postgresql_loses_its_simulators_to_another_and_writes_nothing_once_healed(
    layout: Layout,
) -> None:
    _, b = layout.servers
    traders, tokens = traders_for(layout, "cut-worker", users=1)
    (username,) = tokens
    try:
        (before,) = layout.query(f"{SIMULATOR_ROW} WHERE u.username = %s AND s.status = 'running'", username)
        owner = next(host for host, worker_id in layout.worker_ids.items() if worker_id == before[0])
        other = next(host for host in layout.worker_ids if host != owner)
        trading = Trading(b, tokens, count=12, pause_s=0.2, join_timeout_s=60)
        time.sleep(0.6)
        with layout.network.partitioned(owner, "db"):
            cut_at = time.monotonic()
            adopted_in = wait_for(
                lambda: (
                    layout.query(f"{SIMULATOR_ROW} WHERE u.username = %s", username)[0][0] == layout.worker_ids[other]
                ),
                30,
                interval=0.2,
            )
            (adopted,) = layout.query(f"{SIMULATOR_ROW} WHERE u.username = %s", username)
            time.sleep(max(0.0, cut_at + 8 - time.monotonic()))  # the cut-off worker keeps running, cut off
        placed = trading.finish()
        checked = assert_nothing_lost_or_doubled(layout, traders, placed)
        time.sleep(3 * LEASE_TTL_S)  # healed: time for the cut-off worker to try whatever it would
        (after,) = layout.query(f"{SIMULATOR_ROW} WHERE u.username = %s", username)
        fills = dict(layout.query(FILLS_PER_ORDER, username))
        net_fills, positions = layout.query(NET_FILLS_AND_POSITIONS, username, username)[0]
        resumed = [t for t in traders if t.types_seen["simulator_status_update"]]
    finally:
        stop_all(traders)
    assert adopted_in is not None, layout.workers[owner].log()[-3000:]
    assert adopted[1] > before[1]  # a new lease epoch: the old owner's writes are fenced off
    assert after == adopted, (after, adopted)  # the healed worker took nothing back, renewed nothing
    assert set(fills.values()) == {1}, fills  # every order filled once: nobody matched it twice
    assert net_fills == positions, (net_fills, positions)
    assert len(resumed) == len(traders)  # each client saw the simulator move (starting, running)
    print(
        f"\npartition {owner}|postgresql: its simulator adopted by {other} {adopted_in:.2f} s after the cut"
        f" (lease {LEASE_TTL_S:.0f} s, renewed every {LEASE_RENEW_S} s); healed, the cut-off worker wrote"
        f" nothing (lease epoch {adopted[1]} kept, {len(fills)} orders filled once each); {checked} pushes,"
        " none lost or doubled"
    )


def test_a_worker_host_cut_from_postgresql_inside_a_transaction_loses_its_simulators_all_the_same(
    layout: Layout,
) -> None:
    """Cut while its transaction holds the simulator's row, the host leaves a session that waits for
    a command that never comes: PostgreSQL ends it after idle_in_transaction_session_timeout, and
    the adopter's claim, waiting on that row, goes through without waiting for the heal."""
    traders, tokens = traders_for(layout, "cut-in-tx", users=1, devices=1)
    (username,) = tokens
    row = f"{SIMULATOR_ROW} WHERE u.username = %s"
    try:
        (before,) = layout.query(f"{row} AND s.status = 'running'", username)
        owner = next(host for host, worker_id in layout.worker_ids.items() if worker_id == before[0])
        other = next(host for host in layout.worker_ids if host != owner)
        with (
            layout.transaction_from(owner, f"{row} FOR UPDATE OF s", username),
            layout.network.partitioned(owner, "db"),
        ):
            adopted_in = wait_for(lambda: layout.query(row, username)[0][0] == layout.worker_ids[other], 30)
        (adopted,) = layout.query(row, username)
    finally:
        stop_all(traders)
    assert adopted_in is not None, layout.workers[other].log()[-3000:]
    assert adopted[1] > before[1]
    print(f"\npartition {owner}|postgresql inside a transaction: adopted by {other} {adopted_in:.2f} s after the cut")
