"""Market data and trading in production mode, for real: PostgreSQL, channels-redis,
two daphne processes and two simulator workers (one of which produces the feed)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.liveserver import WorkerProcess, recv_json, recv_until, request, send_json
from tests.support.production import Cluster, production_cluster

SETTINGS = {
    "MARKET_TICK_MS": "100",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
    "SIMULATOR_ORPHAN_GRACE_MS": "4000",
}
EVERY = ()  # read every message type


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with production_cluster(tmp_path_factory.mktemp("market"), SETTINGS, servers=2, workers=2) as cluster:
        yield cluster


def feed_producer(market: Cluster) -> WorkerProcess:
    ((worker_id,),) = market.query("SELECT worker_id FROM market_app_marketfeed WHERE id = 1")
    return market.worker(worker_id)


def test_an_order_placed_on_one_server_fills_and_shows_on_the_other(market: Cluster) -> None:
    first, second = market.servers
    username = f"pm-{uuid.uuid4().hex[:8]}"
    creds_a = first.issue_token(username, "--password", "pw-for-tests-123")
    creds_b = second.login(username, "pw-for-tests-123")
    with (
        first.connect(creds_a["token"], creds_a["deviceId"]) as ws_a,
        second.connect(creds_b["token"], creds_b["deviceId"]) as ws_b,
    ):
        recv_json(ws_a), recv_json(ws_b)
        send_json(ws_a, request("start_simulator", creds_a["deviceId"], "start"))
        recv_until(ws_a, "exchange_data_status", ignore=EVERY, reason="simulator_started")
        recv_until(ws_b, "exchange_data_status", ignore=EVERY, reason="simulator_started")
        tick_a, _ = recv_until(ws_a, "exchange_data", ignore=EVERY)
        tick_b, _ = recv_until(ws_b, "exchange_data", ignore=EVERY)
        send_json(
            ws_a,
            request(
                "place_order", creds_a["deviceId"], "buy", symbol="SPY", side="buy", orderType="market", quantity=4
            ),
        )
        placed, _ = recv_until(ws_a, "order_placed")
        order_id = placed["order"]["orderId"]
        deadline = time.monotonic() + 15
        while True:
            seen_b, _ = recv_until(ws_b, "exchange_data_status", ignore=EVERY, timeout=deadline - time.monotonic())
            if seen_b["userOrders"].get(order_id, {}).get("status") == "filled":
                break
        status, positions = second.request("GET", "/api/market/positions/", token=creds_b["token"])
        deadline = time.monotonic() + 10
        candles: list[dict] = []
        while not candles and time.monotonic() < deadline:  # the feed closes a 1 s bar every second
            candles_status, candles = second.request(
                "GET", "/api/market/candles/?symbol=SPY&interval=1s&limit=3", token=creds_b["token"]
            )
            time.sleep(0.2)

    assert abs(tick_a["seq"] - tick_b["seq"]) <= 2  # one feed for both servers
    # The books crossed Redis with the tick: both servers quote the same top of book for a tick.
    spy_a, spy_b = tick_a["symbols"]["SPY"], tick_b["symbols"]["SPY"]
    assert spy_a["bid"] < spy_a["ask"] and spy_b["bid"] < spy_b["ask"]
    if tick_a["seq"] == tick_b["seq"]:
        assert spy_a == spy_b
    assert seen_b["symbols"]["SPY"]["bid"] < seen_b["symbols"]["SPY"]["ask"]  # snapshots on PostgreSQL too
    assert candles_status == 200 and candles and all(bar["interval"] == "1s" for bar in candles)
    assert seen_b["userPositions"]["SPY"]["quantity"] == 4
    assert status == 200 and positions[0]["symbol"] == "SPY" and positions[0]["quantity"] == 4


def test_the_feed_and_the_matching_survive_a_killed_worker_without_a_double_fill(market: Cluster) -> None:
    server = market.servers[0]
    creds = server.issue_token(f"pk-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        recv_until(ws, "exchange_data_status", ignore=EVERY, reason="simulator_started")
        # Large enough to fill over many ticks (BTC-USD trades a few units a tick).
        send_json(
            ws,
            request(
                "place_order", creds["deviceId"], "big", symbol="BTC-USD", side="buy", orderType="market", quantity=2
            ),
        )
        placed, _ = recv_until(ws, "order_placed")
        before, _ = recv_until(ws, "exchange_data", ignore=EVERY)
        producer = feed_producer(market)
        producer.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        gap_seqs = []
        while True:
            tick, _ = recv_until(ws, "exchange_data", ignore=EVERY, timeout=20)
            gap_seqs.append(tick["seq"])
            if time.monotonic() - killed_at > 1 and len(gap_seqs) > 5:
                break
        resumed_after = time.monotonic() - killed_at
    market.workers.remove(producer)
    market.start_worker()

    order_id = placed["order"]["orderId"]
    filled_qty, status = market.query("SELECT filled_qty, status FROM market_app_order WHERE id = %s", order_id)[0]
    fills = market.query("SELECT quantity, tick_seq FROM market_app_fill WHERE order_id = %s", order_id)
    print(f"\nfeed resumed {resumed_after:.2f} s after its producer was killed")
    assert gap_seqs[0] > before["seq"] and gap_seqs == sorted(gap_seqs)  # the feed continued, not restarted
    assert sum(quantity for quantity, _ in fills) == filled_qty  # every fill counted once
    assert len({seq for _, seq in fills}) == len(fills)  # one fill per tick
    assert status in ("partially_filled", "filled")
