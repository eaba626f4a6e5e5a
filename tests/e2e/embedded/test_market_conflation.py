"""Flow control of the price stream (docs/protocol.md): a client that asked for it and stops
acknowledging ticks gets no more than its window of them, never a backlog, yet still every order
update; its next acknowledgement brings one tick that merges the newest prices, book levels and
open candles of every symbol. A client that did not ask gets every tick."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection

from tests.support.liveserver import DaphneServer, base_env, recv_json, recv_until, request, send_json
from tests.support.servers import RELAXED_LOGIN_THROTTLE, migrated_database

WINDOW = 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DaphneServer]:
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'conflation.sqlite3'}",
        MARKET_TICK_MS="20",
        MARKET_FLOW_WINDOW=str(WINDOW),
        **RELAXED_LOGIN_THROTTLE,
    )
    migrated_database(tmp_path / "conflation.sqlite3")
    server = DaphneServer(env=env).start(tmp_path)
    yield server
    server.stop()


def following(server: DaphneServer, username: str, **subscription: object) -> tuple[ClientConnection, dict, dict]:
    """A trader's socket, its simulator running and its market subscription made."""
    creds = server.login(username, "demo-password" if username == "demo" else "pw")
    ws = server.connect(creds["token"], creds["deviceId"])
    recv_until(ws, "connected")
    send_json(ws, request("start_simulator", creds["deviceId"], "start"))
    recv_until(ws, "exchange_data_status", reason="simulator_started")
    send_json(ws, request("subscribe_market", creds["deviceId"], "sub", **subscription))
    subscribed, _ = recv_until(ws, "market_subscription")
    return ws, creds, subscribed


def test_a_client_that_stops_acknowledging_gets_its_window_then_one_merged_tick_and_every_order_update(
    server: DaphneServer,
) -> None:
    ws, creds, subscribed = following(server, "demo", depth=3, candles=["1s"], flowControl=True)
    with ws:
        ticks: list[dict] = []
        while len(ticks) < WINDOW:  # none acknowledged: the server stops after its window
            message = recv_json(ws)
            if message["type"] == "exchange_data":
                ticks.append(message)
        status, placed = server.request(
            "POST",
            "/api/market/orders/",
            {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0},
            token=creds["token"],
        )
        # The order's update comes through while the ticks wait (it is never conflated), and it
        # names the feed's tick then: well past the window's last.
        update, held = recv_until(ws, "exchange_data_status", ignore=(), reason="orders_changed")
        assert status == 201 and placed["orderId"] in update["userOrders"]
        assert [m for m in held if m["type"] == "exchange_data"] == []
        # Let the feed move on a few ticks (a snapshot on request names its tick), still unacknowledged.
        now = ticks[-1]["seq"]
        while now < ticks[-1]["seq"] + 3:
            send_json(ws, request("request_exchange_data", creds["deviceId"], f"now-{now}"))
            snapshot, held = recv_until(ws, "exchange_data_status", ignore=(), reason="request")
            assert [m for m in held if m["type"] == "exchange_data"] == []
            now = snapshot["seq"]
        send_json(ws, {"type": "market_ack", "deviceId": creds["deviceId"], "seq": ticks[-1]["seq"]})
        merged, between = recv_until(ws, "exchange_data", ignore=())

    assert subscribed["window"] == WINDOW
    assert [t["seq"] for t in ticks] == sorted(t["seq"] for t in ticks)
    assert [m for m in between if m["type"] == "exchange_data"] == []
    assert merged["seq"] >= now > ticks[-1]["seq"] + 1, "the ticks produced meanwhile were merged into one"
    assert set(merged["symbols"]) == set(merged["depth"]) == set(merged["candles"]) == set(ticks[0]["symbols"])
    assert len(merged["depth"]["AAPL"]["asks"]) == 3


def test_a_client_without_flow_control_gets_every_tick_in_order(server: DaphneServer) -> None:
    ws, _, subscribed = following(server, "demo")
    with ws:
        seqs: list[int] = []
        deadline = time.monotonic() + 20
        while len(seqs) < 3 * WINDOW:
            assert time.monotonic() < deadline, seqs
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "exchange_data":
                seqs.append(message["seq"])

    assert "window" not in subscribed
    assert all(b == a + 1 for a, b in itertools.pairwise(seqs)), seqs
