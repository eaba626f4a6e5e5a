"""Bid/ask, depth, candles, book deltas and trades over a real socket against daphne: every follower's
ticks quote the top of book, a depth subscriber gets the book's levels and the open candles it asked
for, a delta subscriber keeps the same books from a snapshot and updates (checksums verified by the
Python client's book keeper), a trades subscriber gets the tape; snapshots carry the top of book, and
REST serves the closed bars."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tradesim.books import BookKeeper
from websockets.sync.client import ClientConnection

from market_app.messages import BookReply, ExchangeData, ExchangeDataStatus, MarketSubscription
from tests.support.liveserver import MARKET_TYPES, DaphneServer, recv_json, recv_until, request, send_json
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


@contextmanager
def trading(server: DaphneServer, name: str) -> Iterator[tuple[dict, ClientConnection]]:
    """A new user's credentials and connection, its simulator started."""
    creds = server.issue_token(f"{name}-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        yield creds, ws


def read_ticks(ws: ClientConnection, ticks: int) -> list[dict]:
    """The next `ticks` `exchange_data`."""
    return [recv_until(ws, "exchange_data", ignore=NONE)[0] for _ in range(ticks)]


def test_a_delta_subscriber_keeps_books_from_a_snapshot_and_updates_that_equal_the_full_books_tick_by_tick(
    server: DaphneServer,
) -> None:
    symbols = ["AAPL", "MSFT"]
    with trading(server, "full-book") as (full_creds, full), trading(server, "delta-book") as (delta_creds, deltas):
        send_json(full, request("subscribe_market", full_creds["deviceId"], "full", symbols=symbols, depth=10))
        recv_until(full, "market_subscription", ignore=MARKET_TYPES)
        subscribe = request(
            "subscribe_market", delta_creds["deviceId"], "deltas", symbols=symbols, depth=10, bookDeltas=True
        )
        send_json(deltas, subscribe)
        subscribed, _ = recv_until(deltas, "market_subscription", ignore=MARKET_TYPES)
        streamed = read_ticks(deltas, 30)
        full_books = {tick["seq"]: tick["depth"] for tick in read_ticks(full, 45) if "depth" in tick}
        send_json(deltas, request("request_book", delta_creds["deviceId"], "again", symbols=["MSFT"]))
        again, _ = recv_until(deltas, "book", ignore=MARKET_TYPES, requestId="again")

    assert subscribed["bookDeltas"] is True and subscribed["depth"] == 10
    keeper = BookKeeper()
    ticks = [ExchangeData.model_validate(tick).model_dump(exclude_none=True) for tick in streamed]
    assert all("depth" not in tick for tick in ticks)
    with_books = [tick for tick in ticks if "books" in tick]
    assert {change["action"] for change in with_books[0]["books"].values()} == {"snapshot"}
    assert set(with_books[0]["books"]) == set(symbols)
    compared = 0
    for tick in with_books:
        _, stale = keeper.apply(tick)
        assert stale == [], f"out of step at tick {tick['seq']}"
        for symbol, held in keeper.books.items():
            expected = full_books.get(tick["seq"], {}).get(symbol)
            if expected is not None:
                assert held.best_bids() == [tuple(level) for level in expected["bids"]]
                assert held.best_asks() == [tuple(level) for level in expected["asks"]]
                compared += 1
    assert compared >= 20, "the two connections should have seen the same ticks"
    updates = [change for tick in with_books[1:] for change in tick["books"].values()]
    assert updates and {change["action"] for change in updates} == {"update"}

    BookReply.model_validate(again)
    assert set(again["books"]) == {"MSFT"} and again["books"]["MSFT"]["action"] == "snapshot"
    assert keeper.apply(again) == (["MSFT"], [])


def test_a_delta_subscriber_behind_its_window_gets_snapshots_never_an_update_against_a_book_it_lacks(
    server: DaphneServer,
) -> None:
    with trading(server, "slow-book") as (creds, ws), trading(server, "feed-watcher") as (_, watcher):
        subscribe = request(
            "subscribe_market", creds["deviceId"], "slow", symbols=["AAPL"], depth=5, bookDeltas=True, flowControl=True
        )
        send_json(ws, subscribe)
        subscribed, _ = recv_until(ws, "market_subscription", ignore=MARKET_TYPES)
        held_back = read_ticks(ws, subscribed["window"])  # then nothing more until acknowledged
        last_seq = held_back[-1]["seq"]
        keeper = BookKeeper()
        for tick in held_back:
            if "books" in tick:
                assert keeper.apply(tick)[1] == []
        # Wait, on another user's ticks, until the feed is past the held-back ones: they were merged.
        while recv_until(watcher, "exchange_data", ignore=NONE)[0]["seq"] < last_seq + 3:
            pass
        send_json(ws, {"type": "market_ack", "deviceId": creds["deviceId"], "seq": last_seq})
        merged, _ = recv_until(ws, "exchange_data", ignore=NONE)

    assert merged["seq"] > last_seq + 1
    assert merged["books"]["AAPL"]["action"] == "snapshot"
    assert keeper.apply(merged) == (["AAPL"], [])


def test_request_book_without_a_delta_subscription_or_for_another_symbol_is_refused_and_the_connection_stays(
    server: DaphneServer,
) -> None:
    with trading(server, "refused-book") as (creds, ws):
        send_json(ws, request("request_book", creds["deviceId"], "early"))
        early, _ = recv_until(ws, "error", ignore=MARKET_TYPES)
        subscribe = request("subscribe_market", creds["deviceId"], "sub", symbols=["AAPL"], depth=3, bookDeltas=True)
        send_json(ws, subscribe)
        recv_until(ws, "market_subscription", ignore=MARKET_TYPES)
        send_json(ws, request("request_book", creds["deviceId"], "other", symbols=["MSFT"]))
        other, _ = recv_until(ws, "error", ignore=MARKET_TYPES)
        send_json(ws, request("request_book", creds["deviceId"], "fine"))
        fine, _ = recv_until(ws, "book", ignore=MARKET_TYPES, requestId="fine")

    assert early["code"] == "book_not_subscribed" and early["requestId"] == "early"
    assert other["code"] == "book_not_subscribed" and other["details"][0]["field"] == "symbols"
    assert set(fine["books"]) == {"AAPL"}


def test_a_flood_of_request_book_is_answered_or_refused_as_rate_limited_and_the_books_stay_in_step(
    server: DaphneServer,
) -> None:
    # Past the burst of 40 (WS_RATE_LIMIT_BURST) a client may send at once, refilled at 20 a second;
    # short of the 100 refusals that would close the connection (WS_RATE_LIMIT_ABUSE_COUNT).
    flood = 90
    keeper = BookKeeper()
    with trading(server, "book-flood") as (creds, ws):
        subscribe = request("subscribe_market", creds["deviceId"], "sub", symbols=["AAPL"], depth=5, bookDeltas=True)
        send_json(ws, subscribe)
        recv_until(ws, "market_subscription", ignore=NONE)
        first, _ = recv_until(ws, "exchange_data", ignore=NONE)  # a book to ask for again
        keeper.apply(first)
        for n in range(flood):
            send_json(ws, request("request_book", creds["deviceId"], f"again-{n}"))
        answers: dict[str, dict] = {}
        ticks_after = 0
        # Everything in arrival order through one keeper, as a client applies it, until every
        # request is answered and three more ticks have come.
        while len(answers) < flood or ticks_after < 3:
            message = recv_json(ws)
            if message["type"] in ("book", "exchange_data") and "books" in message:
                _, stale = keeper.apply(message)
                assert stale == [], message
            if message.get("requestId", "").startswith("again-"):
                answers[message["requestId"]] = message
            elif message["type"] == "exchange_data" and len(answers) == flood:
                ticks_after += 1

    kinds = [answers[f"again-{n}"]["type"] for n in range(flood)]
    # The burst's 40 less the two messages before the flood (start_simulator, subscribe_market) at least.
    assert kinds.count("book") >= 38 and set(kinds) == {"book", "error"}
    refused = [answers[f"again-{n}"] for n in range(flood) if kinds[n] == "error"]
    assert refused and all(error["code"] == "rate_limited" for error in refused)
    assert set(keeper.books) == {"AAPL"}


def test_a_trades_subscriber_gets_the_recent_trades_then_each_ticks_print_by_the_tick_rule(
    server: DaphneServer,
) -> None:
    with trading(server, "tape") as (creds, ws):
        subscribe = request("subscribe_market", creds["deviceId"], "tape", symbols=["AAPL"], trades=True)
        send_json(ws, subscribe)
        subscribed, _ = recv_until(ws, "market_subscription", ignore=MARKET_TYPES)
        ticks = read_ticks(ws, 20)

    assert subscribed["trades"] is True
    first, rest = ticks[0], ticks[1:]
    assert first["tradesSnapshot"] is True and len(first["trades"]["AAPL"]) >= 1
    assert all("tradesSnapshot" not in tick for tick in rest)
    previous = first["trades"]["AAPL"][-1]
    for tick in rest:
        ExchangeData.model_validate(tick)
        quote = tick["symbols"]["AAPL"]
        if quote["volume"] == 0:  # nothing traded: no print
            assert "AAPL" not in tick.get("trades", {})
            continue
        (trade,) = tick["trades"]["AAPL"]
        assert (trade["price"], trade["size"], trade["time"]) == (quote["price"], quote["volume"], tick["timestamp"])
        if trade["price"] != previous["price"]:
            assert trade["side"] == ("buy" if trade["price"] > previous["price"] else "sell")
        else:
            assert trade["side"] == previous["side"]
        previous = trade
