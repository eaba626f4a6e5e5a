"""A trader's own market over a real socket, against daphne: a replay of an uploaded dataset on the
trader's clock (paused at its first bar, stepped, sought, played), fills along a bar's path, the
clock across a reconnect, and the errors of bad clock and market requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from websockets.sync.client import ClientConnection

from simulator_app.messages import ClockChanged, ClockUpdate, SimulatorStarted
from tests.support.liveserver import DaphneServer, recv_json, recv_until, request, send_json
from tests.support.servers import ServerFactory, running_server

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
BARS = 20
NONE = ()


def bar_line(i: int) -> str:
    """Bar i of TST, one second apart: opens at 100 + i, dips 2 below the open, peaks 1 above, closes 0.5 up."""
    at = (T0 + timedelta(seconds=i)).isoformat()
    open_ = 100 + i
    return f"{at},TST,{open_},{open_ + 1},{open_ - 2},{open_ + 0.5},1000"


CSV = "timestamp,symbol,open,high,low,close,volume\n" + "\n".join(bar_line(i) for i in range(BARS)) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(
        tmp_path_factory.mktemp("replay"), SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500"
    ) as server:
        yield server


def upload(server: DaphneServer, token: str) -> str:
    status, body = server.request(
        "POST", "/api/market/datasets/?name=ticks", CSV.encode(), token=token, headers={"Content-Type": "text/csv"}
    )
    assert status == 201, body
    return str(body["datasetId"])


@contextmanager
def replay_trader(server: DaphneServer, **market: object) -> Iterator[tuple[dict, ClientConnection, dict]]:
    """A new user with the dataset uploaded, connected, their replay simulator started and running.
    Yields (credentials, socket, the `simulator_started` reply)."""
    creds = server.issue_token(f"rpl-{uuid.uuid4().hex[:8]}")
    dataset = upload(server, creds["token"])
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        choice = {"source": "replay", "datasetId": dataset, **market}
        send_json(ws, request("start_simulator", creds["deviceId"], "start", profile="ideal", market=choice))
        started, _ = recv_until(ws, "simulator_started", ignore=NONE)
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="running")
        yield creds, ws, started


def send(ws: ClientConnection, creds: dict, kind: str, request_id: str, **fields: object) -> None:
    send_json(ws, request(kind, creds["deviceId"], request_id, **fields))


def clock_at(ws: ClientConnection, bar: int, timeout: float = 20) -> dict:
    """The first `clock_update` whose clock stands at `bar`."""
    while True:
        update, _ = recv_until(ws, "clock_update", timeout=timeout, ignore=NONE)
        if update["clock"].get("bar") == bar:
            return update


def test_a_replay_starts_paused_at_its_first_bar(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, started):
        update = clock_at(ws, 0)
        send(ws, creds, "request_session_info", "info")
        info, skipped = recv_until(ws, "session_info", ignore=NONE)

    SimulatorStarted.model_validate(started)
    assert started["market"] == {
        "source": "replay",
        "datasetId": started["market"]["datasetId"],
        "symbols": ["TST"],
        "start": T0_MS,
        "end": T0_MS + (BARS - 1) * 1000,
        "seed": started["market"]["seed"],
        "bars": BARS,
    }
    paused_at = {"speed": 1.0, "paused": True, "lockstep": False, "finished": False}
    assert started["clock"] == paused_at | {"time": None, "bar": None}
    ClockUpdate.model_validate(update)
    assert update["clock"] == paused_at | {"time": T0_MS, "bar": 0}
    assert info["market"] == "replay"
    # Paused: nothing but the first bar was shown.
    assert [m["timestamp"] for m in skipped if m["type"] == "exchange_data"] in ([], [T0_MS])


def test_a_step_plays_that_many_bars_and_a_seek_moves_to_a_time(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, _):
        clock_at(ws, 0)
        send(ws, creds, "subscribe_market", "sub")
        recv_until(ws, "market_subscription", ignore=NONE)
        send(ws, creds, "step_clock", "step", bars=3)
        changed, _ = recv_until(ws, "clock_changed", ignore=NONE)
        stepped, before = recv_until(ws, "clock_update", ignore=NONE)
        send(ws, creds, "seek_clock", "seek", time=T0_MS + 10_500)
        sought, after = recv_until(ws, "clock_update", ignore=NONE)

    ClockChanged.model_validate(changed)
    assert changed["paused"] is True and changed["speed"] == 1.0
    assert stepped["clock"]["bar"] == 3 and stepped["clock"]["paused"] is True
    bars = [m for m in before if m["type"] == "exchange_data"]
    assert [m["timestamp"] for m in bars] == [T0_MS + 1000, T0_MS + 2000, T0_MS + 3000]
    assert [m["symbols"]["TST"]["price"] for m in bars] == [101.5, 102.5, 103.5]
    # The first bar at or after the time asked for.
    assert sought["clock"]["bar"] == 11 and sought["clock"]["time"] == T0_MS + 11_000
    assert [m["timestamp"] for m in after if m["type"] == "exchange_data"] == [T0_MS + 11_000]


def test_a_replay_plays_at_its_speed_to_its_end(server: DaphneServer) -> None:
    with replay_trader(server, start=T0_MS + 15_000) as (creds, ws, started):
        clock_at(ws, 0)
        send(ws, creds, "set_clock", "play", paused=False, speed=10)
        changed, _ = recv_until(ws, "clock_changed", ignore=NONE)
        end = clock_at(ws, 4)

    assert started["market"]["bars"] == 5
    assert changed["paused"] is False and changed["speed"] == 10
    assert end["clock"]["finished"] is True and end["clock"]["time"] == T0_MS + 19_000


def test_the_report_asked_for_on_hearing_the_replay_finished_covers_every_bar(make_server: ServerFactory) -> None:
    # The worker renews its lease (and checkpoints) a minute apart here: only the checkpoint written
    # with the clock's report can put the finished replay's last bars in its report.
    server = make_server(SIMULATOR_LEASE_TTL_MS="120000", SIMULATOR_LEASE_RENEW_MS="60000")
    with replay_trader(server, start=T0_MS + 15_000) as (creds, ws, started):
        clock_at(ws, 0)
        send(ws, creds, "set_clock", "play", paused=False, speed="max")
        end = clock_at(ws, 4)
        status, report = server.request(
            "GET", f"/api/market/simulators/{started['simulatorId']}/report/", token=creds["token"]
        )

    assert end["clock"]["finished"] is True
    assert status == 200, report
    assert report["bars"] == 5 and report["end"] == T0_MS + 19_000


def test_orders_fill_along_the_next_bars_path(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, _):
        clock_at(ws, 0)
        # Bar 1 opens at 101 and dips to 99: a market buy fills at its open, a limit buy at 99.5 at its limit.
        send(ws, creds, "place_order", "mkt", symbol="TST", side="buy", orderType="market", quantity=10)
        market_order = recv_until(ws, "order_placed", ignore=NONE)[0]["order"]
        send(ws, creds, "place_order", "lmt", symbol="TST", side="buy", orderType="limit", quantity=5, limitPrice=99.5)
        limit_order = recv_until(ws, "order_placed", ignore=NONE)[0]["order"]
        send(ws, creds, "step_clock", "step", bars=1)
        orders: dict = {}
        while not all(orders.get(o["orderId"], {}).get("status") == "filled" for o in (market_order, limit_order)):
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
            orders = snapshot["userOrders"]

    assert orders[market_order["orderId"]]["averagePrice"] == 101.0
    assert orders[limit_order["orderId"]]["averagePrice"] == 99.5


def day_bar(day: int, open_: float, low: float, close: float) -> str:
    at = (T0 + timedelta(days=day)).isoformat()
    return f"{at},TST,{open_},{max(open_, close)},{low},{close},1000"


# TST a day a bar: flat at 100, then a fall to 80 on the third day.
DAYS_CSV = (
    "timestamp,symbol,open,high,low,close,volume\n"
    + "\n".join([day_bar(0, 100, 100, 100), day_bar(1, 100, 99, 100), day_bar(2, 100, 80, 80), day_bar(3, 80, 80, 80)])
    + "\n"
)


def test_a_daily_loss_limit_stops_a_replays_trading_for_the_rest_of_its_bars_day(server: DaphneServer) -> None:
    creds = server.issue_token(f"rpl-{uuid.uuid4().hex[:8]}")
    status, body = server.request(
        "POST",
        "/api/market/datasets/?name=days",
        DAYS_CSV.encode(),
        token=creds["token"],
        headers={"Content-Type": "text/csv"},
    )
    assert status == 201, body
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send(ws, creds, "set_risk_limits", "limits", limits={"dailyLossLimit": 100})
        recv_until(ws, "risk_limits_set", ignore=NONE)
        market = {"source": "replay", "datasetId": str(body["datasetId"])}
        send(ws, creds, "start_simulator", "start", profile="ideal", market=market)
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="running")
        clock_at(ws, 0)
        send(ws, creds, "place_order", "buy", symbol="TST", side="buy", orderType="market", quantity=10)
        recv_until(ws, "order_placed", ignore=NONE)
        send(ws, creds, "place_order", "rest", symbol="TST", side="buy", orderType="limit", quantity=1, limitPrice=50)
        resting = recv_until(ws, "order_placed", ignore=NONE)[0]["order"]["orderId"]
        send(ws, creds, "step_clock", "day1", bars=1)
        clock_at(ws, 1)  # bought 10 at 100: the day ends where it started

        send(ws, creds, "step_clock", "day2", bars=1)  # 80 at the close: 200 lost
        order = {}
        while order.get("status") != "canceled":
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
            order = snapshot["userOrders"][resting]
        clock_at(ws, 2)
        send(ws, creds, "place_order", "halted", symbol="TST", side="buy", orderType="market", quantity=1)
        refused, _ = recv_until(ws, "error", ignore=NONE)
        send(ws, creds, "step_clock", "day3", bars=1)
        clock_at(ws, 3)
        send(ws, creds, "place_order", "next", symbol="TST", side="buy", orderType="market", quantity=1)
        placed, _ = recv_until(ws, "order_placed", ignore=NONE)

    assert order["reason"] == "the daily loss limit of 100 was reached"
    assert (refused["code"], refused["requestId"]) == ("daily_loss_limit", "halted")
    assert placed["order"]["status"] == "new"


# TST a day a bar: flat at 100, a fall to 60, then flat at 60.
FALL_CSV = (
    "timestamp,symbol,open,high,low,close,volume\n"
    + "\n".join(day_bar(day, *prices) for day, prices in enumerate([(100, 100, 100), (100, 99, 100), (100, 60, 60)]))
    + "\n"
    + "\n".join(day_bar(day, 60, 60, 60) for day in (3, 4, 5))
    + "\n"
)


def until_both(ws: ClientConnection, *wanted: tuple[str, dict]) -> list[dict]:
    """Read until a message of each (type, fields) arrived, in whatever order; the first of each."""
    found: list[dict | None] = [None] * len(wanted)
    while None in found:
        message = recv_json(ws, timeout=20)
        for i, (kind, fields) in enumerate(wanted):
            if found[i] is None and message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
                found[i] = message
    return [message for message in found if message is not None]


def test_a_margin_call_in_a_replay_is_issued_at_a_bars_close_and_liquidates_when_not_met(server: DaphneServer) -> None:
    creds = server.issue_token(f"rpl-{uuid.uuid4().hex[:8]}")
    token = creds["token"]
    status, dataset = server.request(
        "POST", "/api/market/datasets/?name=fall", FALL_CSV.encode(), token=token, headers={"Content-Type": "text/csv"}
    )
    assert status == 201, dataset
    status, account = server.request(
        "POST", "/api/market/accounts/", {"name": "M", "accountType": "margin", "startingCash": 1000}, token=token
    )
    assert status == 201, account
    with server.connect(token, creds["deviceId"]) as ws:
        recv_json(ws)
        market = {"source": "replay", "datasetId": str(dataset["datasetId"])}
        send(ws, creds, "start_simulator", "start", profile="ideal", market=market, accountId=account["accountId"])
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="running")
        clock_at(ws, 0)
        # 2,000 on 1,000 of cash: the whole buying power.
        send(ws, creds, "place_order", "buy", symbol="TST", side="buy", orderType="market", quantity=20)
        recv_until(ws, "order_placed", ignore=NONE)
        send(ws, creds, "step_clock", "day1", bars=1)
        clock_at(ws, 1)
        send(ws, creds, "step_clock", "day2", bars=1)  # 60 at the close: equity 200, maintenance 300
        issued, _ = until_both(ws, ("margin_call", {}), ("clock_update", {}))
        send(ws, creds, "step_clock", "day3", bars=1)  # a day later: due, not met
        liquidated, _ = until_both(ws, ("margin_call", {}), ("clock_update", {}))
        send(ws, creds, "step_clock", "day4", bars=1)  # the liquidation sells at the next bar
        sold = {}
        while sold.get("status") != "filled":
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
            sold = next((o for o in snapshot["userOrders"].values() if o.get("liquidation")), {})

    # Less a day's interest on the 1,000 borrowed (8 % / 360), charged at the first bar of day 1.
    assert (issued["call"]["status"], issued["call"]["maintenanceMargin"]) == ("open", 300)
    assert issued["call"]["equity"] == pytest.approx(200 - 1000 * 0.08 / 360, abs=1e-6)
    assert issued["call"]["issuedAt"] == int((T0 + timedelta(days=2)).timestamp() * 1000)
    assert liquidated["call"]["status"] == "liquidated" and liquidated["call"]["callId"] == issued["call"]["callId"]
    assert (sold["side"], sold["quantity"], sold["averagePrice"]) == ("sell", 20, 60)
    assert snapshot["userPositions"]["TST"]["quantity"] == 0


def test_the_clock_survives_a_reconnect(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, _):
        clock_at(ws, 0)
        send(ws, creds, "step_clock", "step", bars=5)
        clock_at(ws, 5)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send(ws, creds, "step_clock", "again", bars=1)
        update = clock_at(ws, 6)

    assert update["clock"]["time"] == T0_MS + 6000


def test_bad_clock_and_market_requests_get_their_codes_and_the_connection_stays(server: DaphneServer) -> None:
    creds = server.issue_token(f"bad-{uuid.uuid4().hex[:8]}")
    mine = upload(server, creds["token"])
    theirs = upload(server, server.issue_token(f"other-{uuid.uuid4().hex[:8]}")["token"])
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        codes = []
        for kind, fields in (
            ("step_clock", {"bars": 1}),  # no simulator
            ("seek_clock", {"time": T0_MS}),
            ("start_simulator", {"market": {"source": "replay", "datasetId": "999999"}}),
            ("start_simulator", {"market": {"source": "replay", "datasetId": theirs}}),  # another user's
            ("start_simulator", {"market": {"source": "replay"}}),
            ("start_simulator", {"market": {"source": "replay", "datasetId": mine, "symbols": ["NOPE"]}}),
            (
                "start_simulator",
                {"market": {"source": "replay", "datasetId": mine, "start": T0_MS + 60_000, "end": T0_MS + 90_000}},
            ),
            ("start_simulator", {"market": {"source": "replay", "datasetId": mine, "speed": 5000}}),
        ):
            send(ws, creds, kind, kind, **fields)
            codes.append(recv_until(ws, "error", ignore=NONE)[0]["code"])
        send(ws, creds, "request_session_info", "info")
        info, _ = recv_until(ws, "session_info", ignore=NONE)

    assert codes == [
        "simulator_not_running",
        "simulator_not_running",
        "unknown_dataset",
        "unknown_dataset",
        "invalid_market",
        "invalid_market",
        "range_outside_data",
        "invalid_message",
    ]
    assert info["simulatorStatus"] == "stopped" and info["simulatorId"] is None  # nothing was started


def test_clock_requests_refused_by_the_running_replay(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, _):
        clock_at(ws, 0)
        send(ws, creds, "seek_clock", "early", time=T0_MS - 1)
        early = recv_until(ws, "error", ignore=NONE)[0]
        send(ws, creds, "set_clock", "play", paused=False)
        recv_until(ws, "clock_changed", ignore=NONE)
        send(ws, creds, "step_clock", "step", bars=1)
        playing = recv_until(ws, "error", ignore=NONE)[0]
        send(ws, creds, "start_simulator", "again", market={"source": "synthetic"})
        again = recv_until(ws, "error", ignore=NONE)[0]

    assert early["code"] == "time_out_of_range"
    assert playing["code"] == "clock_playing"
    assert again["code"] == "simulator_already_running"


def synthetic_prices(server: DaphneServer, seed: int, bars: int) -> tuple[list[dict], dict]:
    """A new user's synthetic walk from `seed`, paused, stepped `bars` bars: the bars' prices, and the
    error a seek gets."""
    creds = server.issue_token(f"syn-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        market = {"source": "synthetic", "seed": seed, "paused": True}
        send(ws, creds, "start_simulator", "start", market=market)
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="running")
        clock_at(ws, 0)
        send(ws, creds, "subscribe_market", "sub")
        recv_until(ws, "market_subscription", ignore=NONE)
        send(ws, creds, "step_clock", "step", bars=bars)
        _, before = recv_until(ws, "clock_update", ignore=NONE)
        send(ws, creds, "seek_clock", "seek", time=0)
        refused = recv_until(ws, "error", ignore=NONE)[0]
    return [m["symbols"] for m in before if m["type"] == "exchange_data"], refused


def test_a_synthetic_walk_is_the_same_from_the_same_seed_and_cannot_seek(server: DaphneServer) -> None:
    first, refused = synthetic_prices(server, 42, 5)
    second, _ = synthetic_prices(server, 42, 5)
    other, _ = synthetic_prices(server, 43, 5)

    assert len(first) == 5 and {"AAPL", "MSFT"} <= set(first[0])
    assert [{s: q["price"] for s, q in bar.items()} for bar in first] == [
        {s: q["price"] for s, q in bar.items()} for bar in second
    ]
    assert first != other
    assert refused["code"] == "time_out_of_range"


def test_a_dataset_a_live_replay_plays_is_not_deleted(server: DaphneServer) -> None:
    with replay_trader(server) as (creds, ws, started):
        clock_at(ws, 0)
        path = f"/api/market/datasets/{started['market']['datasetId']}/"
        refused_status, refused = server.request("DELETE", path, token=creds["token"])
        send(ws, creds, "stop_simulator", "stop")
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="stopped")
        deleted_status, _ = server.request("DELETE", path, token=creds["token"])

    assert refused_status == 409 and refused["code"] == "dataset_in_use"
    assert deleted_status == 204
