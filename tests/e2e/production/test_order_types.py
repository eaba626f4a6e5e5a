"""A bracket across a worker's crash, in production mode for real: PostgreSQL, channels-redis, one
daphne process and two simulator workers. The worker running the simulator is killed (SIGKILL) while
the bracket's exits wait; the adopter must keep every child order, continue the trailing stop's
mark, finish the bracket, and never apply a fill twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from websockets.sync.client import ClientConnection

from tests.support.liveserver import heartbeat, recv_json, recv_until, request, send_json, wait_until
from tests.support.production import Cluster, production_cluster

SETTINGS = {
    "MARKET_TICK_MS": "100",
    "MARKET_COMMISSION_PER_SHARE": "0.01",
    "MARKET_COMMISSION_MINIMUM": "1",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
    "SIMULATOR_ORPHAN_GRACE_MS": "6000",
}
EVERY = ()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with production_cluster(tmp_path_factory.mktemp("brackets"), SETTINGS, servers=1, workers=2) as cluster:
        yield cluster


def snapshot_where(ws: ClientConnection, device_id: str, condition, timeout: float = 20) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    beat = time.monotonic()
    while True:
        if time.monotonic() - beat > 5:
            send_json(ws, heartbeat(device_id, simulatorStatus="running"))
            beat = time.monotonic()
        snapshot, _ = recv_until(
            ws, "exchange_data_status", ignore=EVERY, timeout=max(0.1, deadline - time.monotonic())
        )
        if condition(snapshot):
            return snapshot


def grid(price: float) -> float:
    return float(Decimal(repr(price)).quantize(Decimal("0.01")))


def test_a_worker_killed_mid_bracket_loses_no_child_order_and_applies_no_fill_twice(cluster: Cluster) -> None:
    server = cluster.servers[0]
    creds = server.issue_token(f"br-{uuid.uuid4().hex[:8]}")
    device = creds["deviceId"]
    with server.connect(creds["token"], device) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", device, "start", profile="realistic"))
        started = snapshot_where(ws, device, lambda s: s["reason"] == "simulator_started")
        simulator_id = cluster.query("SELECT id FROM simulator_app_simulator ORDER BY created_at DESC LIMIT 1")[0][0]
        last = started["symbols"]["SPY"]["price"]
        send_json(
            ws,
            request(
                "place_order",
                device,
                "entry",
                symbol="SPY",
                side="buy",
                orderType="market",
                quantity=20,
                orderClass="bracket",
                takeProfit={"limitPrice": grid(last * 1.2)},
                stopLoss={"stopPrice": grid(last * 0.8)},
            ),
        )
        entry = recv_until(ws, "order_placed")[0]["order"]["orderId"]

        def exits(snapshot: dict) -> list[dict]:
            return [o for o in snapshot["userOrders"].values() if o.get("parentOrderId") == entry]

        snapshot_where(ws, device, lambda s: len(exits(s)) == 2)
        send_json(
            ws,
            request(
                "place_order",
                device,
                "trail",
                symbol="SPY",
                side="buy",
                orderType="trailing_stop",
                quantity=1,
                trailPercent=10.0,
            ),
        )
        trailing = recv_until(ws, "order_placed")[0]["order"]["orderId"]
        ((worker_id, epoch),) = cluster.query(
            "SELECT worker_id, lease_epoch FROM simulator_app_simulator WHERE id = %s", simulator_id
        )

        def trail_anchor() -> Decimal | None:
            return cluster.query("SELECT trail_anchor FROM market_app_order WHERE id = %s", trailing)[0][0]

        assert wait_until(lambda: trail_anchor() is not None, 30)  # ticks have set the trailing stop's mark
        anchor_before = trail_anchor()
        cluster.worker(worker_id).stop(signal.SIGKILL)
        recv_until(ws, "simulator_status_update", ignore=EVERY, timeout=20, simulatorStatus="starting")
        recv_until(ws, "simulator_status_update", ignore=EVERY, timeout=20, simulatorStatus="running")
        # The adopter finishes the bracket: the take-profit is moved to a price the bid already beats.
        take = next(
            o for o in exits(snapshot_where(ws, device, lambda s: len(exits(s)) == 2)) if o["orderType"] == "limit"
        )
        send_json(ws, request("replace_order", device, "move", orderId=take["orderId"], limitPrice=grid(last * 0.9)))
        moved = recv_until(ws, "order_replaced", timeout=15)[0]
        done = snapshot_where(ws, device, lambda s: sorted(o["status"] for o in exits(s)) == ["canceled", "filled"])
    cluster.start_worker()

    children = cluster.query("SELECT id, status FROM market_app_order WHERE parent_id = %s", entry)
    ((worker_after, epoch_after),) = cluster.query(
        "SELECT worker_id, lease_epoch FROM simulator_app_simulator WHERE id = %s", simulator_id
    )
    anchor_after = trail_anchor()
    orders = cluster.query(
        "SELECT o.id, o.filled_qty, COALESCE(SUM(f.quantity), 0), COUNT(f.id), COUNT(DISTINCT f.tick_seq) "
        "FROM market_app_order o LEFT JOIN market_app_fill f ON f.order_id = o.id "
        "WHERE o.user_id = (SELECT user_id FROM market_app_order WHERE id = %s) GROUP BY o.id",
        entry,
    )
    ((fees, paid),) = cluster.query(
        "SELECT (SELECT SUM(fee) FROM market_app_fill WHERE user_id = a.user_id), a.fees_paid "
        "FROM market_app_account a WHERE a.user_id = (SELECT user_id FROM market_app_order WHERE id = %s)",
        entry,
    )

    assert worker_after != worker_id and epoch_after > epoch
    assert len(children) == 2  # none lost, none created twice
    assert moved["order"]["limitPrice"] == grid(last * 0.9)
    assert done["userPositions"]["SPY"]["quantity"] == 0
    for _, filled_qty, summed, count, ticks in orders:
        assert summed == filled_qty and count == ticks  # every fill counted once, one per tick
    assert fees == paid and paid > 0
    assert anchor_after is not None and anchor_before is not None and anchor_after <= anchor_before  # a buy's low
