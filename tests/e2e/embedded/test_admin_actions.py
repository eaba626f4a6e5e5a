"""Operators act in the Django admin, and live connections hear about it at once."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from tests.support.admin_client import AdminClient
from tests.support.liveserver import (
    MARKET_TYPES,
    DaphneServer,
    manage,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
)
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


@pytest.fixture
def admin(shared_server: DaphneServer) -> AdminClient:
    client = AdminClient(shared_server.http)
    client.login("admin", "admin-password")
    return client


def test_stopping_a_session_in_the_admin_closes_its_connection_with_4010(
    shared_server: DaphneServer, admin: AdminClient
) -> None:
    creds = shared_server.login("demo", "demo-password")
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws, ignore=MARKET_TYPES)
        ids = admin.search_ids("/admin/sessions_app/tradingsession/", connected["sessionId"])
        assert ids == [connected["sessionId"]]
        page = admin.run_action("/admin/sessions_app/tradingsession/", "stop_sessions", ids)
        messages, code = recv_until_closed(ws)
    assert "Stopped 1 session(s)." in page
    assert [(m["type"], m["code"]) for m in messages] == [("error", "session_stopped")]
    assert "stopped by operator admin" in messages[0]["message"]
    assert code == 4010


def test_invalidating_a_device_in_the_admin_closes_its_connection_with_4003(
    shared_server: DaphneServer, admin: AdminClient
) -> None:
    creds = shared_server.login("demo", "demo-password")
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=MARKET_TYPES)
        ids = admin.search_ids("/admin/sessions_app/device/", creds["deviceId"])
        assert len(ids) == 1
        page = admin.run_action("/admin/sessions_app/device/", "invalidate_devices", ids)
        messages, code = recv_until_closed(ws)
    assert "Invalidated 1 device(s)." in page
    # A flaky run once received nothing before the close: say how it closed, and what the server did.
    assert [m["type"] for m in messages] == ["device_id_invalidated"], (code, shared_server.log()[-3000:])
    assert messages[0]["reason"] == "invalidated by operator admin"
    assert code == 4003


def test_the_admin_lists_sessions_with_filters_and_search(shared_server: DaphneServer, admin: AdminClient) -> None:
    page = admin.get("/admin/sessions_app/tradingsession/?status__exact=active")
    assert "By status" in page
    assert "Search" in admin.get("/admin/sessions_app/device/")
    assert "body" in admin.get("/static/admin/css/base.css")  # the admin is styled under daphne


def test_stopping_a_simulator_in_the_admin_is_seen_by_every_connection_of_its_user(
    shared_server: DaphneServer, admin: AdminClient
) -> None:
    creds_a = shared_server.issue_token("admin-stop-trader", "--password", "pw-for-tests-123")
    creds_b = shared_server.login("admin-stop-trader", "pw-for-tests-123")
    with (
        shared_server.connect(creds_a["token"], creds_a["deviceId"]) as ws_a,
        shared_server.connect(creds_b["token"], creds_b["deviceId"]) as ws_b,
    ):
        recv_json(ws_a, ignore=MARKET_TYPES), recv_json(ws_b, ignore=MARKET_TYPES)
        send_json(ws_a, request("start_simulator", creds_a["deviceId"], "start"))
        started, _ = recv_until(ws_a, "simulator_started")
        recv_until(ws_b, "simulator_status_update", simulatorStatus="running")
        listed = admin.get("/admin/simulator_app/simulator/?status__exact=running")
        ids = admin.search_ids("/admin/simulator_app/simulator/", started["simulatorId"])
        page = admin.run_action("/admin/simulator_app/simulator/", "stop_simulators", ids)
        stopped_b, before_b = recv_until(ws_b, "simulator_status_update", simulatorStatus="stopped")
        stopped_a, _ = recv_until(ws_a, "simulator_status_update", simulatorStatus="stopped")
        workers = admin.get("/admin/simulator_app/simulatorworker/")

    assert started["simulatorId"] in listed and ids == [started["simulatorId"]]
    assert "Stopping 1 simulator(s)." in page
    assert [m["simulatorStatus"] for m in before_b] == ["stopping"]
    assert stopped_a["reason"] == stopped_b["reason"] == "stopped by operator admin"
    assert "inprocess" in workers and 'alt="True"' in workers


def test_an_instrument_added_in_the_admin_joins_the_live_feed(shared_server: DaphneServer, admin: AdminClient) -> None:
    admin.get("/admin/market_app/instrument/add/")
    admin.post(
        "/admin/market_app/instrument/add/",
        [
            ("symbol", "ADMN"),
            ("name", "Added in the admin"),
            ("tick_size", "0.05"),
            ("start_price", "42.00"),
            ("volatility", "0.4"),
            ("drift", "0"),
            ("base_volume", "10"),
            ("is_active", "on"),
            ("sort_order", "99"),
            ("spread_bps", "50"),
            ("book_levels", "3"),
            ("book_top_size", "7"),
            ("book_decay", "1.5"),
            ("book_level_gap_ticks", "2"),
            ("lot_size", "1"),
        ],
    )
    creds = shared_server.issue_token("admin-feed-trader")
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        send_json(ws, request("subscribe_market", creds["deviceId"], "deep", depth=5))
        recv_until(ws, "market_subscription")
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        deadline = time.monotonic() + 15
        while True:
            tick, _ = recv_until(ws, "exchange_data", ignore=(), timeout=deadline - time.monotonic())
            if "ADMN" in tick["symbols"]:
                break
    quote = tick["symbols"]["ADMN"]
    price, bid, ask = quote["price"], quote["bid"], quote["ask"]
    assert all(round(p / 0.05, 6).is_integer() for p in (price, bid, ask)) and 0 < bid < ask
    # 50 bps of about 42 is 0.21, about four ticks of 0.05, give or take the spread's noise.
    assert 0.05 <= ask - bid <= 0.5 and quote["bidSize"] >= 1
    asks = [level_price for level_price, _ in tick["depth"]["ADMN"]["asks"]]
    assert len(asks) == 3 and [round(b - a, 6) for a, b in itertools.pairwise(asks)] == [0.1, 0.1]  # 3 levels, 2 ticks


def test_the_live_view_lists_connections_and_an_operator_can_close_one(
    make_server: ServerFactory,
) -> None:
    server = make_server(PRESENCE_FLUSH_INTERVAL_S="1", **RELAXED_LOGIN_THROTTLE)
    operator = AdminClient(server.http)
    operator.login("admin", "admin-password")
    creds = server.login("demo", "demo-password")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
        deadline = time.monotonic() + 10
        while creds["deviceId"] not in (page := operator.get("/admin/sessions_app/serverprocess/live/")):
            assert time.monotonic() < deadline, "the connection never showed in the live view"
            time.sleep(0.2)
        index = operator.get("/admin/")
        status = json.loads(manage(server.env, "service_status"))
        channel = re.search(r'name="channel" value="([^"]+)"', page)
        assert channel is not None
        operator.post("/admin/sessions_app/serverprocess/live/", [("action", "disconnect"), ("channel", channel[1])])
        messages, code = recv_until_closed(ws)

    assert connected["sessionId"] in page and "demo" in page
    assert 'id="service-counts"' in index and "Connections" in index
    assert status["connections"] == 1 and status["sessionsByStatus"]["active"] >= 1
    assert [m["code"] for m in messages] == ["closed_by_operator"] and code == 4014
    assert "closed by operator admin" in messages[0]["message"]


def test_the_live_view_stops_a_session_and_invalidates_a_device(make_server: ServerFactory) -> None:
    server = make_server(PRESENCE_FLUSH_INTERVAL_S="1", **RELAXED_LOGIN_THROTTLE)
    operator = AdminClient(server.http)
    operator.login("admin", "admin-password")
    stopping, invalidating = server.login("demo", "demo-password"), server.login("demo", "demo-password")
    live = "/admin/sessions_app/serverprocess/live/"
    with (
        server.connect(stopping["token"], stopping["deviceId"]) as ws_stop,
        server.connect(invalidating["token"], invalidating["deviceId"]) as ws_invalidate,
    ):
        session_id = recv_json(ws_stop)["sessionId"]
        recv_json(ws_invalidate)
        deadline = time.monotonic() + 10
        while invalidating["deviceId"] not in operator.get(live) or session_id not in operator.get(live):
            assert time.monotonic() < deadline, "the connections never showed in the live view"
            time.sleep(0.2)
        operator.post(live, [("action", "stop"), ("session", session_id)])
        operator.post(live, [("action", "invalidate"), ("device", invalidating["deviceId"])])
        stopped, stop_code = recv_until_closed(ws_stop)
        invalidated, invalidate_code = recv_until_closed(ws_invalidate)

    assert [m.get("code") for m in stopped] == ["session_stopped"] and stop_code == 4010
    assert [m["type"] for m in invalidated] == ["device_id_invalidated"] and invalidate_code == 4003, (
        invalidate_code,
        server.log()[-3000:],
    )
