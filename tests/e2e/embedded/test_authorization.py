"""Every client message and API call aimed at another user's session, device, simulator or
order changes nothing and answers with the standard error."""

from __future__ import annotations

import uuid

from tests.support.liveserver import DaphneServer, reconnect, recv_json, recv_until, request, send_json


def test_another_user_cannot_touch_a_traders_session_device_simulator_or_orders(shared_server: DaphneServer) -> None:
    server = shared_server
    alice = server.issue_token(f"alice-{uuid.uuid4().hex[:6]}")
    mallory = server.issue_token(f"mallory-{uuid.uuid4().hex[:6]}")
    with (
        server.connect(alice["token"], alice["deviceId"]) as ws_a,
        server.connect(mallory["token"], mallory["deviceId"]) as ws_m,
    ):
        alice_connected = recv_json(ws_a)
        recv_json(ws_m)
        send_json(ws_a, request("start_simulator", alice["deviceId"], "start"))
        recv_until(ws_a, "simulator_status_update", simulatorStatus="running")
        ticket = {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0}
        send_json(ws_a, request("place_order", alice["deviceId"], "order", **ticket))
        order_id = recv_until(ws_a, "order_placed")[0]["order"]["orderId"]

        # Mallory's socket, aimed at Alice's things.
        attempts = {
            "cancel": request("cancel_order", mallory["deviceId"], "cancel", orderId=order_id),
            "her-device-info": request("request_session_info", alice["deviceId"], "her-device-info"),
            "her-device-stop": request("stop_session", alice["deviceId"], "her-device-stop"),
            "her-device-sim": request("stop_simulator", alice["deviceId"], "her-device-sim"),
            "her-device-order": request("place_order", alice["deviceId"], "her-device-order", **ticket),
            "own-stop-sim": request("stop_simulator", mallory["deviceId"], "own-stop-sim"),
        }
        codes = {}
        for request_id, message in attempts.items():
            send_json(ws_m, message)
            codes[request_id] = recv_until(ws_m, "error")[0]["code"]
        send_json(ws_m, reconnect(mallory["deviceId"], alice_connected["sessionToken"], "steal"))
        stolen = recv_until(ws_m, "reconnect_result")[0]

        # Mallory's token, over REST.
        cancel_status, cancel_body = server.request(
            "POST", f"/api/market/orders/{order_id}/cancel/", token=mallory["token"]
        )
        invalidate_status, _ = server.request(
            "POST", f"/api/devices/{alice['deviceId']}/invalidate/", {}, token=mallory["token"]
        )
        _, mallory_orders = server.request("GET", "/api/market/orders/", token=mallory["token"])

        # Alice is untouched.
        send_json(ws_a, request("request_session_info", alice["deviceId"], "check"))
        info = recv_until(ws_a, "session_info")[0]
        _, alice_orders = server.request("GET", "/api/market/orders/?status=open", token=alice["token"])

    assert codes == {
        "cancel": "order_not_found",
        "her-device-info": "device_id_mismatch",
        "her-device-stop": "device_id_mismatch",
        "her-device-sim": "device_id_mismatch",
        "her-device-order": "device_id_mismatch",
        "own-stop-sim": "simulator_not_running",
    }
    assert stolen["success"] is False and stolen["message"] == "the session belongs to another device"
    assert cancel_status == 404 and cancel_body["code"] == "order_not_found"
    assert invalidate_status == 404
    assert mallory_orders == []
    assert info["status"] == "active" and info["simulatorStatus"] == "running"
    assert [o["orderId"] for o in alice_orders] == [order_id]
