"""Faults injected for real: a server killed or stopped mid-trading, Redis restarted, PostgreSQL
cut off. Production mode (PostgreSQL, a Redis of the test's own, two daphne processes and a
simulator worker). Clients recover as the protocol says, and every numbered push (order and
position updates, simulator status) is counted: none may be lost and none received twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import redis

from tests.support.faults import (
    DEVICES,
    NET_FILLS_AND_POSITIONS,
    SETTINGS,
    USERS,
    RedisServer,
    TcpProxy,
    Trader,
    Trading,
    assert_nothing_lost_or_doubled,
    recovered_once,
    session_ids,
    start_simulator,
    traders_for,
)
from tests.support.liveserver import heartbeat, recv_json, recv_until, request, send_json, wait_until
from tests.support.production import POSTGRES_URL, Cluster, production_cluster

MARKET_BUY = {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 1}
FILLED_ORDERS = """
SELECT COUNT(*) FROM market_app_order o JOIN auth_user u ON u.id = o.user_id
 WHERE u.username = %s AND o.status = 'filled'
"""


@contextmanager
def cluster_with_own_redis(directory: Path, **extra: str) -> Iterator[tuple[Cluster, RedisServer]]:
    own_redis = RedisServer(directory).start()
    try:
        with production_cluster(
            directory, {**SETTINGS, "REDIS_URL": own_redis.url, **extra}, servers=2, workers=1
        ) as c:
            yield c, own_redis
    finally:
        own_redis.stop()


def stream_head(own_redis: RedisServer, prefix: str, session_id: str) -> tuple[str, int]:
    meta = redis.Redis.from_url(own_redis.url).hmget(f"{prefix}:stream:{session_id}:m", "epoch", "seq")
    return meta[0].decode(), int(meta[1] or 0)


def assert_every_push_of_the_epoch_received(traders: list[Trader], cluster: Cluster, own_redis: RedisServer) -> None:
    sessions = session_ids(cluster)
    for trader in traders:
        epoch, head = stream_head(own_redis, cluster.env["CHANNEL_LAYER_PREFIX"], sessions[trader.creds["deviceId"]])
        assert trader.first_position is not None and trader.first_position[0] == epoch
        # The pushes numbered up to the head may still be on their way: wait for the last one.
        last = (epoch, head)
        wait_until(lambda t=trader, last=last: last[1] == t.first_position[1] or last in t.received, 20)
        received = sorted(seq for e, seq in trader.received if e == epoch)
        assert received == list(range(trader.first_position[1] + 1, head + 1)), (trader.name, received, head)


def test_a_server_killed_mid_trading_loses_no_order_update(tmp_path: Path) -> None:
    with cluster_with_own_redis(tmp_path) as (cluster, own_redis):
        traders, tokens = traders_for(cluster)
        trading = Trading(cluster.servers[1], tokens, count=16)
        time.sleep(1.0)
        killed_at = time.monotonic()
        cluster.servers[0].stop(signal.SIGKILL)
        placed = trading.finish()
        on_killed = recovered_once(traders, USERS * DEVICES // 2)
        assert len(on_killed) == USERS * DEVICES // 2
        checked = assert_nothing_lost_or_doubled(traders, placed)
        assert_every_push_of_the_epoch_received(traders, cluster, own_redis)
        for trader in on_killed:
            (recovery,) = trader.recoveries
            assert recovery.recovered and recovery.closed_code in (None, 1006)
        worst = max(r.recovered_at - killed_at for t in on_killed for r in t.recoveries)
        replayed = sum(r.replayed for t in on_killed for r in t.recoveries)
        print(
            f"\nSIGKILL: {len(on_killed)} clients recovered (worst {worst:.2f} s after the kill, {replayed} pushes"
            f" replayed); {checked} pushes checked, none lost or doubled"
        )
        for trader in traders:
            trader.stop()


def test_a_server_stopped_with_sigterm_tells_every_client_and_they_resume_elsewhere(tmp_path: Path) -> None:
    with cluster_with_own_redis(tmp_path) as (cluster, own_redis):
        traders, tokens = traders_for(cluster)
        trading = Trading(cluster.servers[1], tokens, count=12)
        time.sleep(1.0)
        stopping = time.monotonic()
        cluster.servers[0].stop(signal.SIGTERM)
        stopped_in = time.monotonic() - stopping
        placed = trading.finish()
        moved = recovered_once(traders, USERS * DEVICES // 2)
        assert len(moved) == USERS * DEVICES // 2
        unlike_told = [
            (t.name, t.types_seen["shutdown"], t.closes, t.recoveries, t.errors)
            for t in moved
            if not (t.types_seen["shutdown"] == 1 and t.closes[0] == 4012 and t.recoveries[0].recovered)
        ]
        assert unlike_told == []
        checked = assert_nothing_lost_or_doubled(traders, placed)
        assert_every_push_of_the_epoch_received(traders, cluster, own_redis)
        print(f"\nSIGTERM: process gone in {stopped_in:.2f} s; {len(moved)} clients moved; {checked} pushes, 0 lost")
        for trader in traders:
            trader.stop()


def test_a_redis_restart_keeps_sockets_open_and_the_service_recovers_by_itself(tmp_path: Path) -> None:
    # A restart shorter than the channel-layer watchdog (an outage past it sends every socket elsewhere,
    # tests/e2e/netns/): its bound is set well above this outage, which a loaded machine stretches.
    with cluster_with_own_redis(tmp_path, CHANNEL_LAYER_WATCHDOG_MS="60000") as (cluster, own_redis):
        traders, tokens = traders_for(cluster)
        own_redis.kill()
        down_at = time.monotonic()
        # While Redis is away the sockets stay and heartbeats are answered; orders are accepted.
        answered = {t.name: t.heartbeats_answered for t in traders}
        placed_during = Trading(cluster.servers[1], tokens, count=3).finish()
        time.sleep(max(1.5, down_at + 5 - time.monotonic()))  # longer than a blocking read of the layer
        assert all(t.heartbeats_answered > answered[t.name] for t in traders)
        own_redis.start()  # empty: every stream and group membership is gone
        back_at = time.monotonic()
        assert wait_until(lambda: all(t.resyncs for t in traders), 20), [t.name for t in traders if not t.resyncs]
        resynced_in = time.monotonic() - back_at
        # Working again without restarting anything: new orders reach every client as pushes.
        placed_after = Trading(cluster.servers[1], tokens, count=4).finish()
        placed = {u: placed_during[u] + placed_after[u] for u in tokens}
        checked = assert_nothing_lost_or_doubled(traders, placed)
        assert all(not t.recoveries and t.closes == [] for t in traders), [(t.name, t.closes) for t in traders]
        # No state corrupted: each user's position is the sum of their fills.
        for username in tokens:
            fills, positions = cluster.query(NET_FILLS_AND_POSITIONS, username, username)[0]
            assert fills == positions, (username, fills, positions)
        print(
            f"\nRedis restart: down {back_at - down_at:.1f} s, every client resynchronised {resynced_in:.2f} s after"
            f" Redis returned; no socket closed; {checked} pushes checked"
        )
        for trader in traders:
            trader.stop()


def test_a_postgresql_outage_answers_with_the_standard_error_and_heals_by_itself(tmp_path: Path) -> None:
    parts = urlsplit(POSTGRES_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    own_redis = RedisServer(tmp_path).start()
    try:
        with production_cluster(tmp_path, {**SETTINGS, "REDIS_URL": own_redis.url}, servers=1, workers=1) as cluster:
            # From here on the server and the worker reach PostgreSQL only through the proxy.
            proxied = {
                **cluster.env,
                "DATABASE_URL": cluster.database_url.replace(f":{parts.port}/", f":{proxy.port}/"),
            }
            server = cluster.servers[0]
            server.stop()
            server.env = proxied
            server.start(tmp_path)
            cluster.workers[0].stop()
            cluster.env = proxied
            cluster.start_worker()
            creds = server.issue_token("pg-outage")
            start_simulator(server, creds)
            with server.connect(creds["token"], creds["deviceId"]) as ws:
                recv_until(ws, "exchange_data_status", reason="connected", ignore=("exchange_data",))
                proxy.cut()
                cut_at = time.monotonic()
                send_json(ws, request("request_session_info", creds["deviceId"], "during"))
                error, _ = recv_until(ws, "error", timeout=30, requestId="during")
                send_json(ws, heartbeat(creds["deviceId"]))
                ack, _ = recv_until(ws, "heartbeat_ack")
                ready_status, ready = server.request("GET", "/readyz")
                order_status, order_error = server.request(
                    "POST", "/api/market/orders/", MARKET_BUY, token=creds["token"]
                )
                with server.connect(creds["token"], creds["deviceId"]) as refused:
                    refusal = recv_json(refused)
                time.sleep(max(0.0, cut_at + 5 - time.monotonic()))  # stay cut for a while
                proxy.restore()
                restored_at = time.monotonic()

            def places_an_order() -> bool:
                status, _ = server.request("POST", "/api/market/orders/", MARKET_BUY, token=creds["token"])
                return status == 201

            assert wait_until(places_an_order, 30, interval=0.5)
            healed_in = time.monotonic() - restored_at
            with server.connect(creds["token"], creds["deviceId"]) as ws:
                assert recv_json(ws)["type"] == "connected"
            # The worker came back too: the order is filled.
            assert wait_until(lambda: cluster.query(FILLED_ORDERS, "pg-outage")[0][0] >= 1, 20)
            assert (error["code"], error["requestId"]) == ("service_unavailable", "during")
            assert ack["type"] == "heartbeat_ack"
            assert ready_status == 503 and "database" in str(ready)
            assert order_status == 503 and order_error["code"] == "service_unavailable"
            assert (refusal["type"], refusal["code"]) == ("error", "service_unavailable")
            assert server.process is not None and server.process.poll() is None
            assert all(w.process is not None and w.process.poll() is None for w in cluster.live_workers())
            print(f"\nPostgreSQL cut for {restored_at - cut_at:.1f} s; orders placed again {healed_in:.2f} s after")
    finally:
        proxy.close()
        own_redis.stop()
