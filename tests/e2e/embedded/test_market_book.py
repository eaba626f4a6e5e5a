"""Bid/ask, depth and candles over a real socket against daphne: every follower's ticks quote the
top of book, a depth subscriber gets the book's levels and the open candles it asked for, snapshots
carry the top of book, and REST serves the closed bars."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from market_app.messages import ExchangeData, ExchangeDataStatus, MarketSubscription
from tests.support.liveserver import DaphneServer, recv_json, recv_until, request, send_json
from tests.support.servers import running_server

MARKET = {
    "MARKET_TICK_MS": "100",
    "MARKET_SEED": "11",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
}
NONE = ()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("book"), **MARKET) as server:
        yield server


def test_ticks_and_snapshots_quote_bid_and_ask_and_a_depth_subscriber_gets_levels_and_candles(
    server: DaphneServer,
) -> None:
    creds = server.issue_token(f"book-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        shallow = [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(3)]
        ask_depth = request(
            "subscribe_market", creds["deviceId"], "sub", symbols=["AAPL", "BTC-USD"], depth=3, candles=["1s", "1m"]
        )
        send_json(ws, ask_depth | {"requestId": "too-deep", "depth": 51})
        refused, _ = recv_until(ws, "error", ignore=NONE)
        send_json(ws, ask_depth | {"requestId": "bad-interval", "candles": ["2m"]})
        refused_interval, _ = recv_until(ws, "error", ignore=NONE)
        send_json(ws, ask_depth)
        subscribed, _ = recv_until(ws, "market_subscription", ignore=NONE)
        deep = [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(15)]
        send_json(ws, request("request_exchange_data", creds["deviceId"], "snap"))
        requested, _ = recv_until(ws, "exchange_data_status", ignore=NONE, requestId="snap")

    ExchangeDataStatus.model_validate(snapshot)
    MarketSubscription.model_validate(subscribed)
    assert refused["code"] == "invalid_message" and refused["requestId"] == "too-deep"
    assert refused["details"][0]["field"].startswith("depth")
    assert refused_interval["code"] == "invalid_message" and refused_interval["details"][0]["field"].startswith(
        "candles"
    )
    assert subscribed["depth"] == 3 and subscribed["candles"] == ["1s", "1m"]
    assert subscribed["symbols"] == ["AAPL", "BTC-USD"]

    for quote in requested["symbols"].values():
        assert quote["bid"] < quote["ask"] and quote["bidSize"] > 0 and quote["askSize"] > 0

    for tick in shallow:
        ExchangeData.model_validate(tick)
        assert "depth" not in tick and "candles" not in tick
        apple = tick["symbols"]["AAPL"]
        assert apple["bid"] <= apple["price"] <= apple["ask"] and apple["bid"] < apple["ask"]

    after = [tick for tick in deep if "depth" in tick]  # the ticks sent since the subscription
    assert len(after) >= 10
    for tick in after:
        ExchangeData.model_validate(tick)
        assert set(tick["symbols"]) == set(tick["depth"]) == {"AAPL", "BTC-USD"}
        for symbol, book in tick["depth"].items():
            assert len(book["bids"]) == len(book["asks"]) == 3
            top = tick["symbols"][symbol]
            assert book["bids"][0] == [top["bid"], top["bidSize"]] and book["asks"][0] == [top["ask"], top["askSize"]]
            bids, asks = [p for p, _ in book["bids"]], [p for p, _ in book["asks"]]
            assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
        bar = tick["candles"]["AAPL"]["1s"]
        assert set(tick["candles"]["AAPL"]) == {"1s", "1m"}
        assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]
        assert bar["start"] % 1000 == 0 and bar["start"] <= tick["timestamp"] < bar["start"] + 1000
        assert bar["close"] == tick["symbols"]["AAPL"]["price"]
    starts = [tick["candles"]["AAPL"]["1s"]["start"] for tick in after]
    assert len(set(starts)) > 1, "1 s bars should roll over within 1.5 s of ticks"


def test_closed_bars_are_served_over_rest(server: DaphneServer) -> None:
    creds = server.issue_token(f"bars-{uuid.uuid4().hex[:8]}")
    deadline = time.monotonic() + 20
    bars: list[dict] = []
    while time.monotonic() < deadline and len(bars) < 2:
        status, bars = server.request(
            "GET", "/api/market/candles/?symbol=AAPL&interval=1s&limit=5", token=creds["token"]
        )
        assert status == 200
        time.sleep(0.5)
    assert len(bars) >= 2
    assert [bar["start"] for bar in bars] == sorted(bar["start"] for bar in bars)
    assert all(bar["interval"] == "1s" and bar["volume"] >= 0 and bar["low"] <= bar["high"] for bar in bars)
    status, error = server.request("GET", "/api/market/candles/?symbol=AAPL&interval=7s", token=creds["token"])
    assert status == 400 and error["code"] == "invalid_request"
