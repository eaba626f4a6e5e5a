"""Several accounts per user against daphne over a real socket and REST: an account opened over the
socket, a simulator started on it trades it (the snapshot names it), the other account is untouched,
and the account is renamed and closed; bad account requests get the standard error and the connection
stays."""

from __future__ import annotations

import uuid

import pytest

from tests.support.liveserver import DaphneServer, recv_json, recv_until, request, send_json

NONE = ()


def test_a_simulator_started_on_another_account_trades_it_over_the_socket(shared_server: DaphneServer) -> None:
    creds = shared_server.issue_token(f"acct-{uuid.uuid4().hex[:8]}")
    token, device = creds["token"], creds["deviceId"]
    with shared_server.connect(token, device) as ws:
        recv_json(ws)
        send_json(ws, request("open_account", device, "open", account={"name": "Swing", "startingCash": 20_000}))
        opened, _ = recv_until(ws, "account_changed", ignore=NONE, requestId="open")
        swing = opened["account"]
        assert (swing["name"], swing["cash"], swing["isCurrent"], swing["isDefault"]) == ("Swing", 20_000, False, False)

        send_json(ws, request("start_simulator", device, "start", accountId=swing["accountId"], profile="ideal"))
        started, _ = recv_until(ws, "simulator_started", ignore=NONE, requestId="start")
        assert started["success"] is True
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")  # running: it takes orders
        send_json(ws, request("place_order", device, "buy", symbol="AAPL", side="buy", orderType="market", quantity=2))
        placed, _ = recv_until(ws, "order_placed", ignore=NONE, requestId="buy")
        order_id = placed["order"]["orderId"]
        while True:
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
            if order_id in snapshot["userOrders"] and snapshot["userOrders"][order_id]["status"] == "filled":
                break
        assert (snapshot["account"]["accountId"], snapshot["account"]["name"]) == (swing["accountId"], "Swing")
        assert snapshot["account"]["cash"] < 20_000 and snapshot["userPositions"]["AAPL"]["quantity"] == 2

        send_json(ws, request("list_accounts", device, "list"))
        listed, _ = recv_until(ws, "accounts", ignore=NONE, requestId="list")
        by_name = {a["name"]: a for a in listed["accounts"]}
        assert by_name["Main"]["cash"] == 100_000 and not by_name["Main"]["isCurrent"]
        assert by_name["Swing"]["isCurrent"] and by_name["Swing"]["cash"] == snapshot["account"]["cash"]

        send_json(ws, request("close_account", device, "busy", accountId=swing["accountId"]))
        busy, _ = recv_until(ws, "error", ignore=NONE, requestId="busy")
        assert busy["code"] == "account_in_use"
        send_json(ws, request("stop_simulator", device, "stop"))
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="stopped", timeout=15)

        send_json(
            ws, request("update_account", device, "rename", accountId=swing["accountId"], settings={"name": "S2"})
        )
        renamed, _ = recv_until(ws, "account_changed", ignore=NONE, requestId="rename")
        assert renamed["account"]["name"] == "S2"
        send_json(ws, request("close_account", device, "close", accountId=swing["accountId"]))
        closed, _ = recv_until(ws, "account_changed", ignore=NONE, requestId="close")
        assert closed["account"]["closedAt"] is not None
        # The default account is current again: the connection hears it.
        after, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
        while after["account"]["name"] != "Main":
            after, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
        assert after["account"]["cash"] == 100_000 and after["userPositions"] == {}

    status, fills = shared_server.request(
        "GET", f"/api/market/journal/fills/?accountId={swing['accountId']}", token=token
    )
    assert status == 200 and [f["orderId"] for f in fills] == [order_id]
    status, fills = shared_server.request("GET", "/api/market/journal/fills/", token=token)
    assert status == 200 and fills == []


def test_bad_account_requests_get_the_standard_error_and_the_connection_stays(shared_server: DaphneServer) -> None:
    mine, theirs = (shared_server.issue_token(f"acct-{uuid.uuid4().hex[:8]}") for _ in range(2))
    status, their_account = shared_server.request(
        "POST", "/api/market/accounts/", {"name": "Theirs"}, token=theirs["token"]
    )
    assert status == 201, their_account
    device = mine["deviceId"]
    with shared_server.connect(mine["token"], device) as ws:
        recv_json(ws)
        for request_id, message, code in (
            ("a", request("start_simulator", device, "a", accountId=their_account["accountId"]), "unknown_account"),
            ("b", request("close_account", device, "b", accountId=their_account["accountId"]), "unknown_account"),
            ("c", request("open_account", device, "c", account={"name": ""}), "invalid_message"),
            ("d", request("open_account", device, "d", account={"name": "Main"}), "account_name_taken"),
            ("e", request("update_account", device, "e", accountId="1", settings={}), "invalid_message"),
        ):
            send_json(ws, message)
            error, _ = recv_until(ws, "error", ignore=NONE, requestId=request_id)
            assert error["code"] == code, error
        send_json(ws, request("list_accounts", device, "list"))
        listed, _ = recv_until(ws, "accounts", ignore=NONE, requestId="list")
        assert [a["name"] for a in listed["accounts"]] == ["Main"]
    status, still = shared_server.request(
        "GET", f"/api/market/accounts/{their_account['accountId']}/", token=theirs["token"]
    )
    assert status == 200 and still["closedAt"] is None


def test_a_margin_account_sells_short_over_the_socket_and_shows_its_requirements(shared_server: DaphneServer) -> None:
    creds = shared_server.issue_token(f"acct-{uuid.uuid4().hex[:8]}")
    token, device = creds["token"], creds["deviceId"]
    status, account = shared_server.request(
        "POST", "/api/market/accounts/", {"name": "Shorts", "accountType": "margin"}, token=token
    )
    assert status == 201 and account["accountType"] == "margin", account
    with shared_server.connect(token, device) as ws:
        recv_json(ws)
        send_json(ws, request("start_simulator", device, "start", accountId=account["accountId"], profile="ideal"))
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        send_json(
            ws, request("place_order", device, "short", symbol="AAPL", side="sell", orderType="market", quantity=2)
        )
        placed, _ = recv_until(ws, "order_placed", ignore=NONE, requestId="short")
        order_id = placed["order"]["orderId"]
        while True:
            snapshot, _ = recv_until(ws, "exchange_data_status", ignore=NONE)
            if snapshot["userOrders"].get(order_id, {}).get("status") == "filled":
                break
        short = snapshot["userPositions"]["AAPL"]
        assert short["quantity"] == -2 and short["value"] < 0
        figures = snapshot["account"]
        assert figures["accountType"] == "margin" and figures["cash"] > 100_000
        assert figures["initialMargin"] > 0 and figures["maintenanceMargin"] > 0
        assert figures["marginExcess"] == pytest.approx(figures["equity"] - figures["maintenanceMargin"])
        send_json(ws, request("stop_simulator", device, "stop"))
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="stopped", timeout=15)

        send_json(ws, request("start_simulator", device, "cash"))  # the default account: cash
        recv_until(ws, "exchange_data_status", ignore=NONE, reason="simulator_started")
        send_json(ws, request("place_order", device, "no", symbol="AAPL", side="sell", orderType="market", quantity=1))
        error, _ = recv_until(ws, "error", ignore=NONE, requestId="no")
        assert error["code"] == "insufficient_position"
        send_json(ws, request("stop_simulator", device, "stop2"))
        recv_until(ws, "simulator_status_update", ignore=NONE, simulatorStatus="stopped", timeout=15)
