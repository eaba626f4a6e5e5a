"""The account's journal, figures and reset against daphne over a real socket: the worker samples
equity while the simulator runs, the journal streams from the ASGI server, `reset_account` is refused
while the simulator runs and then resets the account, with a fresh snapshot to the connection."""

from __future__ import annotations

import csv
import io
import time
import urllib.request
import uuid

import pytest

from market_app.messages import AccountResetDone
from tests.support.liveserver import DaphneServer, recv_json, recv_until, request, send_json
from tests.support.servers import ServerFactory

NONE = ()


def get_text(server: DaphneServer, path: str, token: str, accept: str = "*/*") -> tuple[str, str]:
    req = urllib.request.Request(f"{server.http}{path}", headers={"Authorization": f"Bearer {token}", "Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def test_a_run_is_sampled_journaled_and_reset_over_the_socket(make_server: ServerFactory) -> None:
    server = make_server(
        MARKET_TICK_MS="100",
        MARKET_SEED="7",
        EQUITY_SAMPLE_INTERVAL_S="1",
        SIMULATOR_LEASE_TTL_MS="2000",
        SIMULATOR_LEASE_RENEW_MS="500",
    )
    creds = server.issue_token(f"jrn-{uuid.uuid4().hex[:8]}")
    token, device = creds["token"], creds["deviceId"]
    with server.connect(token, device) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", device, "start"))
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        for side, request_id in (("buy", "b1"), ("sell", "s1")):
            send_json(
                ws, request("place_order", device, request_id, symbol="AAPL", side=side, orderType="market", quantity=3)
            )
            placed, _ = recv_until(ws, "order_placed", ignore=NONE, requestId=request_id)
            order_id = placed["order"]["orderId"]
            while True:
                snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
                if snapshot["userOrders"][order_id]["status"] == "filled":
                    break

        deadline = time.monotonic() + 15
        while True:  # the worker writes a sample a second while the simulator runs
            status, curve = server.request("GET", "/api/market/journal/equity/", token=token)
            if (status == 200 and len(curve) >= 3) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(curve) >= 3, curve
        assert all(point["epoch"] == 0 and point["equity"] > 0 for point in curve)

        send_json(ws, request("reset_account", device, "r1"))
        refused, _ = recv_until(ws, "error", ignore=NONE, requestId="r1")
        assert refused["code"] == "account_in_use"

        status, figures = server.request("GET", "/api/market/journal/performance/", token=token)
        assert status == 200 and (figures["fills"], figures["roundTrips"], figures["orders"]) == (2, 1, 2)
        media, text = get_text(server, "/api/market/journal/fills/", token, accept="text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert media.startswith("text/csv") and [r["side"] for r in rows] == ["buy", "sell"]
        _, fills = server.request("GET", "/api/market/journal/fills/", token=token)
        assert [float(r["price"]) for r in rows] == [f["price"] for f in fills]
        realized = (fills[1]["price"] - fills[0]["price"]) * 3 - fills[0]["fee"] - fills[1]["fee"]
        assert figures["fees"] == fills[0]["fee"] + fills[1]["fee"] == 2  # at least 1 an order
        assert figures["realizedPnl"] == pytest.approx(realized, abs=1e-6)

        send_json(ws, request("stop_simulator", device, "stop"))
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="stopped", timeout=15)
        send_json(ws, request("reset_account", device, "r2"))
        done, _ = recv_until(ws, "account_reset", ignore=NONE, requestId="r2")
        AccountResetDone.model_validate(done)
        assert done["reset"]["epoch"] == 1 and done["reset"]["cashBefore"] == pytest.approx(100_000 + realized)
        snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE, reason="orders_changed")
        assert snapshot["account"]["cash"] == 100_000 and snapshot["userPositions"] == {}

    status, current = server.request("GET", "/api/market/journal/performance/", token=token)
    assert status == 200 and (current["epoch"], current["fills"], current["realizedPnl"]) == (1, 0, 0)
    status, whole = server.request("GET", "/api/market/journal/performance/?from=0", token=token)
    assert (whole["fills"], whole["resets"], whole["realizedPnl"]) == (2, 1, figures["realizedPnl"])
