"""Market data and paper trading over a real socket and the REST API, against daphne
(embedded default: the server process produces the feed and matches orders)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.sync.client import ClientConnection

from market_app.bar_files import load_bars
from market_app.messages import ExchangeData, ExchangeDataStatus
from tests.support.liveserver import ROOT, DaphneServer, reconnect, recv_json, recv_until, request, send_json
from tests.support.servers import ServerFactory, running_server

MARKET = {
    "MARKET_TICK_MS": "100",
    "MARKET_SEED": "7",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
}
NONE = ()  # read every message type


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("market"), **MARKET) as server:
        yield server


@contextmanager
def trader(server: DaphneServer, *, start: bool = True) -> Iterator[tuple[dict, ClientConnection, dict | None]]:
    """A new user connected from one device; with `start`, their simulator running. Yields
    (credentials, socket, the snapshot sent when the simulator started)."""
    creds = server.issue_token(f"mkt-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        snapshot = None
        if start:
            send_json(ws, request("start_simulator", creds["deviceId"], "start"))
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        yield creds, ws, snapshot


def order(creds: dict, request_id: str, **ticket: object) -> dict:
    return request("place_order", creds["deviceId"], request_id, **ticket)


def wait_for_order(ws: ClientConnection, order_id: str, status: str, timeout: float = 10) -> dict:
    """The first snapshot in which the order has `status`."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot, _ = recv_until(ws, "exchange_data_status", timeout=max(0.1, deadline - time.monotonic()), ignore=NONE)
        if snapshot["userOrders"].get(order_id, {}).get("status") == status:
            return snapshot


def test_a_started_simulator_gets_a_snapshot_and_then_live_ticks(server: DaphneServer) -> None:
    with trader(server) as (_, ws, snapshot):
        ticks = [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(5)]

    assert snapshot is not None
    ExchangeDataStatus.model_validate(snapshot)
    assert {"AAPL", "MSFT", "BTC-USD", "EUR-USD"} <= set(snapshot["symbols"])
    assert snapshot["account"]["cash"] == 100_000 and snapshot["userOrders"] == {} and snapshot["userPositions"] == {}
    for tick in ticks:
        ExchangeData.model_validate(tick)
        assert set(tick["symbols"]) == set(snapshot["symbols"])
        # The spec's fields, plus the top of book (additions a spec client ignores).
        assert all(
            set(quote) == {"price", "change", "volume", "bid", "ask", "bidSize", "askSize"}
            for quote in tick["symbols"].values()
        )
    seqs = [tick["seq"] for tick in ticks]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert len({tick["symbols"]["AAPL"]["price"] for tick in ticks}) > 1, "prices should move"


def test_a_market_order_fills_on_a_following_tick_and_the_position_shows_it(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        send_json(ws, order(creds, "buy", symbol="AAPL", side="buy", orderType="market", quantity=10))
        placed, _ = recv_until(ws, "order_placed")
        filled = wait_for_order(ws, placed["order"]["orderId"], "filled")

    assert placed["requestId"] == "buy" and placed["success"] is True
    assert placed["order"]["status"] == "new" and placed["order"]["filledQty"] == 0
    fill = filled["userOrders"][placed["order"]["orderId"]]
    assert fill["filledQty"] == 10 and fill["averagePrice"] > 0
    position = filled["userPositions"]["AAPL"]
    assert position["quantity"] == 10 and position["averagePrice"] == fill["averagePrice"]
    assert position["value"] == pytest.approx(10 * filled["symbols"]["AAPL"]["price"])
    assert fill["fee"] == 1  # the default schedule: 0.005 a share, at least 1 an order
    assert filled["account"]["cash"] == pytest.approx(100_000 - 10 * fill["averagePrice"] - fill["fee"])
    assert filled["account"]["feesPaid"] == 1
    assert filled["reason"] == "orders_changed"


def test_a_limit_order_waits_for_its_price_and_can_be_canceled(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        send_json(ws, order(creds, "low", symbol="MSFT", side="buy", orderType="limit", quantity=5, limitPrice=1.0))
        placed, _ = recv_until(ws, "order_placed")
        order_id = placed["order"]["orderId"]
        for _ in range(5):
            recv_until(ws, "exchange_data", ignore=NONE)
        send_json(ws, request("request_exchange_data", creds["deviceId"], "look"))
        waiting, _ = recv_until(ws, "exchange_data_status", ignore=NONE, requestId="look")
        send_json(ws, request("cancel_order", creds["deviceId"], "cancel", orderId=order_id))
        canceled, _ = recv_until(ws, "order_canceled")
        after = wait_for_order(ws, order_id, "canceled")
        send_json(ws, request("cancel_order", creds["deviceId"], "again", orderId=order_id))
        again, _ = recv_until(ws, "error")

    assert waiting["userOrders"][order_id]["status"] == "new" and waiting["reason"] == "request"
    assert waiting["account"]["reservedCash"] == pytest.approx(5.0)
    assert canceled["order"]["status"] == "canceled" and canceled["requestId"] == "cancel"
    assert after["account"]["reservedCash"] == 0
    assert again["code"] == "order_not_cancelable" and again["requestId"] == "again"


def test_a_limit_sell_at_a_reachable_price_fills_and_realizes_profit_or_loss(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        send_json(ws, order(creds, "buy", symbol="EUR-USD", side="buy", orderType="market", quantity=1000))
        placed, _ = recv_until(ws, "order_placed")
        bought = wait_for_order(ws, placed["order"]["orderId"], "filled")
        send_json(
            ws, order(creds, "sell", symbol="EUR-USD", side="sell", orderType="limit", quantity=1000, limitPrice=0.5)
        )
        sold_order, _ = recv_until(ws, "order_placed")
        sold = wait_for_order(ws, sold_order["order"]["orderId"], "filled")

    buy_price = bought["userOrders"][placed["order"]["orderId"]]["averagePrice"]
    sell_price = sold["userOrders"][sold_order["order"]["orderId"]]["averagePrice"]
    assert sell_price >= 0.5  # a limit sell never fills below its limit; it got the market price
    position = sold["userPositions"]["EUR-USD"]
    assert position["quantity"] == 0
    fees = (
        bought["userOrders"][placed["order"]["orderId"]]["fee"]
        + sold["userOrders"][sold_order["order"]["orderId"]]["fee"]
    )
    assert fees == 10  # 1,000 units at 0.005 each way
    assert position["realizedPnl"] == pytest.approx((sell_price - buy_price) * 1000 - fees, abs=1e-6)
    assert sold["account"]["cash"] == pytest.approx(100_000 + position["realizedPnl"], abs=1e-6)


def test_reconnecting_brings_a_snapshot_with_the_orders_and_positions(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        send_json(ws, order(creds, "buy", symbol="MSFT", side="buy", orderType="market", quantity=3))
        placed, _ = recv_until(ws, "order_placed")
        wait_for_order(ws, placed["order"]["orderId"], "filled")
        send_json(ws, request("request_session_info", creds["deviceId"], "info"))
        recv_until(ws, "session_info")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
        on_connect, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
        send_json(ws, reconnect(creds["deviceId"], connected["sessionToken"], "rc"))
        result, _ = recv_until(ws, "reconnect_result")
        on_reconnect, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
        tick, _ = recv_until(ws, "exchange_data", ignore=NONE)

    for snapshot, reason in ((on_connect, "connected"), (on_reconnect, "reconnected")):
        assert snapshot["reason"] == reason
        assert snapshot["userOrders"][placed["order"]["orderId"]]["status"] == "filled"
        assert snapshot["userPositions"]["MSFT"]["quantity"] == 3
    assert result["success"] is True and tick["seq"] >= on_connect["seq"]


def test_subscribing_narrows_the_ticks_to_the_chosen_symbols(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, snapshot):
        send_json(ws, request("subscribe_market", creds["deviceId"], "two", symbols=["MSFT", "AAPL"]))
        reply, _ = recv_until(ws, "market_subscription")
        narrowed = [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(3)]
        send_json(ws, request("subscribe_market", creds["deviceId"], "bad", symbols=["AAPL", "NOPE"]))
        refused, _ = recv_until(ws, "error")
        send_json(ws, request("subscribe_market", creds["deviceId"], "all", symbols=[]))
        everything, _ = recv_until(ws, "market_subscription")
        widened, _ = recv_until(ws, "exchange_data", ignore=NONE)

    assert reply == {"type": "market_subscription", "requestId": "two", "success": True, "symbols": ["AAPL", "MSFT"]}
    assert narrowed[-1]["symbols"].keys() == {"AAPL", "MSFT"}
    assert (
        refused["code"] == "unknown_symbol"
        and {"field": "symbols", "problem": "NOPE is not listed"} in refused["details"]
    )
    assert snapshot is not None and set(everything["symbols"]) == set(snapshot["symbols"])
    assert set(widened["symbols"]) == set(snapshot["symbols"])


def test_orders_are_refused_with_documented_codes(server: DaphneServer) -> None:
    with trader(server, start=False) as (creds, ws, _):
        send_json(ws, order(creds, "early", symbol="AAPL", side="buy", orderType="market", quantity=1))
        not_running, _ = recv_until(ws, "error")
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        cases = {
            "unknown": ({"symbol": "ZZZZ", "side": "buy", "orderType": "market", "quantity": 1}, "unknown_symbol"),
            "tick": (
                {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.005},
                "invalid_price",
            ),
            "rich": ({"symbol": "BTC-USD", "side": "buy", "orderType": "market", "quantity": 100}, "insufficient_cash"),
            "short": (
                {"symbol": "AAPL", "side": "sell", "orderType": "market", "quantity": 1},
                "insufficient_position",
            ),
            "shape": ({"symbol": "AAPL", "side": "hold", "orderType": "market", "quantity": 1}, "invalid_message"),
        }
        codes = {}
        for request_id, (ticket, _) in cases.items():
            send_json(ws, order(creds, request_id, **ticket))
            refusal, _ = recv_until(ws, "error")
            codes[refusal["requestId"]] = refusal["code"]

    assert not_running["code"] == "simulator_not_running" and not_running["requestId"] == "early"
    assert codes == {request_id: code for request_id, (_, code) in cases.items()}


def test_risk_limits_set_over_the_socket_refuse_an_order_beyond_them_and_the_connection_stays(
    server: DaphneServer,
) -> None:
    with trader(server) as (creds, ws, _):
        limits = {"maxOrderValue": 1_000, "maxOpenOrders": 1}
        send_json(ws, request("set_risk_limits", creds["deviceId"], "limits", limits=limits))
        set_, _ = recv_until(ws, "risk_limits_set")
        send_json(ws, order(creds, "big", symbol="MSFT", side="buy", orderType="market", quantity=3))
        too_big, _ = recv_until(ws, "error")
        send_json(ws, order(creds, "far", symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=100))
        placed, _ = recv_until(ws, "order_placed")
        send_json(ws, order(creds, "more", symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=100))
        too_many, _ = recv_until(ws, "error")
        send_json(ws, request("set_risk_limits", creds["deviceId"], "wrong", limits={"maxLeverage": -1}))
        wrong, _ = recv_until(ws, "error")

    assert set_["requestId"] == "limits" and set_["success"] is True
    assert set_["riskLimits"]["limits"] == {
        "maxOrderValue": 1_000.0,
        "maxPositionValue": None,
        "maxOpenOrders": 1,
        "maxLeverage": None,
        "dailyLossLimit": None,
    }
    assert (too_big["requestId"], too_big["code"]) == ("big", "order_value_limit")
    assert placed["requestId"] == "far" and placed["success"] is True
    assert (too_many["requestId"], too_many["code"]) == ("more", "open_orders_limit")
    assert (wrong["requestId"], wrong["code"]) == ("wrong", "invalid_message")


def test_stopping_the_simulator_stops_the_ticks_and_cancels_open_orders(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        send_json(ws, order(creds, "low", symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=1.0))
        placed, _ = recv_until(ws, "order_placed")
        send_json(ws, request("stop_simulator", creds["deviceId"], "stop"))
        recv_until(ws, "simulator_status_update", simulatorStatus="stopped")
        canceled = wait_for_order(ws, placed["order"]["orderId"], "canceled")
        # Ticks already on their way may still come; then a whole second (ten ticks) without one.
        deadline = time.monotonic() + 20
        with pytest.raises(TimeoutError):
            while time.monotonic() < deadline:
                recv_until(ws, "exchange_data", timeout=1.0, ignore=NONE)

    assert "simulator stopped" in canceled["userOrders"][placed["order"]["orderId"]]["reason"]


def test_the_rest_api_trades_for_the_token_owner_only(server: DaphneServer) -> None:
    with trader(server) as (creds, ws, _):
        token = creds["token"]
        status, instruments = server.request("GET", "/api/market/instruments/", token=token)
        status_place, placed = server.request(
            "POST",
            "/api/market/orders/",
            {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 2, "clientOrderId": "ticket-1"},
            token=token,
        )
        _, replayed = server.request(
            "POST",
            "/api/market/orders/",
            {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 2, "clientOrderId": "ticket-1"},
            token=token,
        )
        wait_for_order(ws, placed["orderId"], "filled")  # the socket sees REST orders too
        _, limit = server.request(
            "POST",
            "/api/market/orders/",
            {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0},
            token=token,
        )
        other = server.issue_token(f"other-{uuid.uuid4().hex[:6]}")["token"]
        status_foreign, foreign = server.request("POST", f"/api/market/orders/{limit['orderId']}/cancel/", token=other)
        status_cancel, canceled = server.request("POST", f"/api/market/orders/{limit['orderId']}/cancel/", token=token)
        _, open_orders = server.request("GET", "/api/market/orders/?status=open", token=token)
        _, all_orders = server.request("GET", "/api/market/orders/", token=token)
        _, positions = server.request("GET", "/api/market/positions/", token=token)
        _, fills = server.request("GET", "/api/market/fills/", token=token)
        _, account = server.request("GET", "/api/market/account/", token=token)
        status_bad, bad = server.request("POST", "/api/market/orders/", {"symbol": "AAPL"}, token=token)
        status_anon, _ = server.request("GET", "/api/market/orders/")

    assert status == 200 and {"symbol", "name", "tickSize", "price", "change", "volume"} <= set(instruments[0])
    assert status_place == 201 and placed["status"] == "new" and replayed["orderId"] == placed["orderId"]
    assert status_foreign == 404 and foreign["code"] == "order_not_found"
    assert status_cancel == 200 and canceled["status"] == "canceled"
    assert open_orders == [] and {o["orderId"] for o in all_orders} == {placed["orderId"], limit["orderId"]}
    assert [p["symbol"] for p in positions] == ["AAPL"] and positions[0]["quantity"] == 2
    assert len(fills) >= 1 and sum(f["quantity"] for f in fills) == 2 and fills[0]["orderId"] == placed["orderId"]
    assert account["cash"] == pytest.approx(100_000 - sum(f["quantity"] * f["price"] + f["fee"] for f in fills))
    assert status_bad == 400 and bad["code"] == "invalid_request" and bad["details"]
    assert status_anon == 401


def test_the_openapi_document_is_served(server: DaphneServer) -> None:
    status, document = server.request("GET", "/api/schema/")
    assert status == 200 and document["openapi"].startswith("3.1")
    assert "/api/market/orders/" in document["paths"] and "OrderTicket" in document["components"]["schemas"]


def test_replay_mode_streams_the_recorded_bars(make_server: ServerFactory) -> None:
    bars = load_bars(ROOT / "market_app" / "data" / "example_bars.csv")
    closes = {float(bar.close) for bar in bars["AAPL"]}
    server = make_server(MARKET_SOURCE="replay", MARKET_TICK_MS="50")
    creds = server.issue_token("replay-trader")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        ticks = [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(5)]
    assert set(ticks[0]["symbols"]) == set(bars)
    assert all(tick["symbols"]["AAPL"]["price"] in closes for tick in ticks)
