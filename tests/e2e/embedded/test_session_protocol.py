"""The session protocol walked over a real socket against daphne, as a frontend would."""

from __future__ import annotations

import msgpack
import pytest

from tests.support.liveserver import (
    DaphneServer,
    heartbeat,
    reconnect,
    recv_json,
    recv_until_closed,
    request,
    send_json,
)
from tests.support.servers import ServerFactory


def login(server: DaphneServer, device_id: str | None = None) -> dict:
    return server.login("demo", "demo-password", device_id)


def test_a_client_logs_in_over_http_and_receives_connected_first(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    assert set(creds) == {"token", "deviceId", "expiresAt"}
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
    assert connected["type"] == "connected"
    assert connected["deviceId"] == creds["deviceId"]
    assert isinstance(connected["sessionId"], str) and isinstance(connected["sessionToken"], str)
    assert isinstance(connected["userId"], str)
    assert connected["heartbeatInterval"] == 15_000 and connected["heartbeatTimeout"] == 45_000
    assert connected["sessionStatus"] == "active" and connected["resumed"] is False
    assert connected["simulatorStatus"] == "stopped" and connected["simulatorId"] is None
    assert connected["expiresAt"] > connected["createdAt"]
    assert abs(connected["timestamp"] - creds["expiresAt"] + 24 * 3600 * 1000) < 60_000


def test_heartbeat_is_acknowledged_with_the_servers_judgement_and_state(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        beat = heartbeat(creds["deviceId"], connectionQuality="poor")
        send_json(ws, beat)
        ack = recv_json(ws)
        send_json(ws, heartbeat("someone-elses-device"))
        mismatched = recv_json(ws)
    assert ack == {
        "type": "heartbeat_ack",
        "timestamp": ack["timestamp"],
        "clientTimestamp": beat["timestamp"],
        "deviceId": creds["deviceId"],
        "deviceIdValid": True,
        "connectionQualityUpdate": "good",  # judged from timing, not echoed from the client's "poor"
        "sessionStatus": "valid",
        "simulatorStatus": "stopped",
    }
    assert mismatched["deviceIdValid"] is False and mismatched["deviceId"] == creds["deviceId"]


def test_session_info_echoes_the_request_id_and_describes_the_session(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
        send_json(ws, request("request_session_info", creds["deviceId"], "info-1"))
        info = recv_json(ws)
    assert info == {
        "type": "session_info",
        "requestId": "info-1",
        "sessionId": connected["sessionId"],
        "userId": connected["userId"],
        "status": "active",
        "deviceId": creds["deviceId"],
        "createdAt": connected["createdAt"],
        "expiresAt": connected["expiresAt"],
        "simulatorStatus": "stopped",
        "simulatorId": None,
    }


def test_a_dropped_client_reconnects_to_the_same_session(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        first = recv_json(ws)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        second = recv_json(ws)
        send_json(ws, reconnect(creds["deviceId"], first["sessionToken"], "re-1"))
        result = recv_json(ws)
    assert second["sessionId"] == first["sessionId"] and second["resumed"] is True
    assert result == {
        "type": "reconnect_result",
        "requestId": "re-1",
        "success": True,
        "deviceId": creds["deviceId"],
        "deviceIdValid": True,
        "message": "session resumed",
        "sessionStatus": "active",
        "simulatorStatus": "stopped",
        # Without `lastSessionSeq` the client asked for no recovery; the stream position is told.
        "recovered": False,
        "replayed": 0,
        "sessionSeq": second["sessionSeq"],
        "sessionEpoch": second["sessionEpoch"],
    }


def test_stop_session_replies_then_closes_with_4010_and_the_old_token_no_longer_resumes(
    shared_server: DaphneServer,
) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        first = recv_json(ws)
        send_json(ws, request("stop_session", creds["deviceId"], "stop-1"))
        messages, code = recv_until_closed(ws)
    assert messages == [
        {
            "type": "session_stopped",
            "requestId": "stop-1",
            "success": True,
            "message": "session stopped",
            "simulatorStopped": False,
        }
    ]
    assert code == 4010
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        second = recv_json(ws)
        send_json(ws, reconnect(creds["deviceId"], first["sessionToken"], "re-2"))
        result = recv_json(ws)
        send_json(ws, reconnect(creds["deviceId"], "forged.x", "re-3"))
        forged = recv_json(ws)
        send_json(ws, reconnect("not-this-device", second["sessionToken"], "re-4"))
        wrong_device = recv_json(ws)
    assert second["sessionId"] != first["sessionId"] and second["resumed"] is False
    assert result["success"] is False and result["sessionStatus"] == "stopped"
    assert "stopped" in result["message"]
    assert forged["success"] is False and forged["sessionStatus"] == "unknown"
    assert wrong_device["success"] is False and wrong_device["deviceIdValid"] is False
    assert wrong_device["deviceId"] == creds["deviceId"] and wrong_device["sessionStatus"] == "active"


@pytest.mark.parametrize(
    ("frame", "code", "request_id"),
    [
        ("{not json", "invalid_json", None),
        (b"\x00\x01", "binary_not_supported", None),
        ("[1, 2]", "not_an_object", None),
        ('{"requestId": "r-1"}', "unknown_type", "r-1"),
        ('{"type": "buy_everything", "requestId": "r-2"}', "unknown_type", "r-2"),
        ('{"type": "request_session_info", "requestId": "r-3", "timestamp": 1}', "invalid_message", "r-3"),
        (
            '{"type": "request_session_info", "requestId": "r-4", "timestamp": "1", "deviceId": "d"}',
            "invalid_message",
            "r-4",
        ),
        (
            '{"type": "heartbeat", "timestamp": 1, "deviceId": "d", "connectionQuality": "superb",'
            ' "sessionStatus": "active", "simulatorStatus": "stopped"}',
            "invalid_message",
            None,
        ),
        (
            '{"type": "stop_session", "requestId": "r-5", "timestamp": 1, "deviceId": "not-mine"}',
            "device_id_mismatch",
            "r-5",
        ),
        ('{"type": "heartbeat", "pad": "' + "x" * 70_000 + '"}', "message_too_large", None),
        # A lone surrogate (the escape, as the JSON text carries it) cannot be echoed: null, not internal_error.
        (
            '{"type": "request_session_info", "requestId": "\\ud800", "timestamp": 1, "deviceId": "d"}',
            "invalid_message",
            None,
        ),
        ('{"type": "buy_everything", "requestId": "\\udfff"}', "unknown_type", None),
        (
            '{"type": "reconnect", "requestId": "r-6", "timestamp": 1, "deviceId": "d", "sessionToken": "a\\udc00"}',
            "invalid_message",
            "r-6",
        ),
        ('{"type": "request_session_info", "requestId": "' + "r" * 129 + '"}', "invalid_message", None),
    ],
)
def test_bad_frames_get_the_standard_error_and_the_connection_stays_open(
    shared_server: DaphneServer, frame: str | bytes, code: str, request_id: str | None
) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        ws.send(frame)
        error = recv_json(ws)
        send_json(ws, heartbeat(creds["deviceId"]))
        still_open = recv_json(ws)
    assert error["type"] == "error" and error["code"] == code and error["requestId"] == request_id
    assert isinstance(error["message"], str) and isinstance(error["timestamp"], int)
    assert set(error) <= {"type", "requestId", "code", "message", "timestamp", "details"}
    if code == "invalid_message":
        assert error["details"] and {"field", "problem"} <= set(error["details"][0])
    assert still_open["type"] == "heartbeat_ack"


def test_a_second_connection_of_the_device_replaces_the_first(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as first:
        first_connected = recv_json(first)
        with shared_server.connect(creds["token"], creds["deviceId"]) as second:
            second_connected = recv_json(second)
            messages, code = recv_until_closed(first)
            send_json(second, heartbeat(creds["deviceId"]))
            assert recv_json(second)["sessionStatus"] == "valid"
    assert second_connected["sessionId"] == first_connected["sessionId"]
    assert [m["type"] for m in messages] == ["connection_replaced"]
    assert messages[0]["deviceId"] == creds["deviceId"] and messages[0]["sessionId"] == first_connected["sessionId"]
    assert code == 4009


def test_invalidating_a_device_over_http_tells_its_connection_and_closes_it(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws)
        status, body = shared_server.request(
            "POST", f"/api/devices/{creds['deviceId']}/invalidate/", {"reason": "phone lost"}, token=creds["token"]
        )
        messages, code = recv_until_closed(ws)
    assert status == 200 and body["valid"] is False and body["invalidatedReason"] == "phone lost"
    assert [m["type"] for m in messages] == ["device_id_invalidated"]
    assert messages[0]["deviceId"] == creds["deviceId"] and messages[0]["reason"] == "phone lost"
    assert code == 4003
    # Its tokens stop working, on HTTP and on the socket.
    status, body = shared_server.request("GET", "/api/devices/", token=creds["token"])
    assert status == 403 and body["code"] == "device_invalidated"
    with shared_server.connect(creds["token"], creds["deviceId"]) as ws:
        messages, code = recv_until_closed(ws)
    assert messages[0]["code"] == "device_invalidated" and code == 4003


def test_daphnes_limit_sits_above_the_applications(make_server: ServerFactory) -> None:
    # As scripts/serve and deploy/ run daphne: twice the application's 64 KiB.
    server = make_server(args=("--websocket-max-message-size", "131072", "--websocket-max-frame-size", "131072"))
    creds = server.issue_token("big-sender")
    with server.connect(creds["token"], creds["deviceId"], max_size=None) as ws:
        recv_json(ws)
        ws.send('{"type": "heartbeat", "pad": "' + "x" * 100_000 + '"}')
        refused = recv_json(ws)
        send_json(ws, heartbeat(creds["deviceId"]))
        still_open = recv_json(ws)
        ws.send('{"type": "heartbeat", "pad": "' + "x" * 200_000 + '"}')
        _, code = recv_until_closed(ws)
    assert refused["code"] == "message_too_large" and still_open["type"] == "heartbeat_ack"
    assert code in (1009, 1006)  # daphne fails the connection; the close frame may be lost to the reset


def test_a_client_offering_msgpack_speaks_it_both_ways_and_a_bad_frame_gets_the_error_in_msgpack(
    shared_server: DaphneServer,
) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"], subprotocols=["tradesim.msgpack"]) as ws:
        chosen = ws.subprotocol
        first = ws.recv(timeout=30)
        ws.send(msgpack.packb(heartbeat(creds["deviceId"])))
        ack = ws.recv(timeout=30)
        ws.send(b"\xc1")  # a byte MessagePack never uses
        undecodable = ws.recv(timeout=30)
        ws.send(msgpack.packb([1, 2]))
        not_object = ws.recv(timeout=30)
        send_json(ws, request("request_session_info", creds["deviceId"], "as-text"))  # JSON text still understood
        info = ws.recv(timeout=30)

    assert chosen == "tradesim.msgpack"
    assert all(isinstance(frame, bytes) for frame in (first, ack, undecodable, not_object, info))
    connected = msgpack.unpackb(first)
    assert connected["type"] == "connected" and connected["deviceId"] == creds["deviceId"]
    assert isinstance(connected["heartbeatInterval"], int)
    assert msgpack.unpackb(ack)["type"] == "heartbeat_ack"
    assert msgpack.unpackb(undecodable)["code"] == "invalid_msgpack"
    assert msgpack.unpackb(not_object)["code"] == "not_an_object"
    assert msgpack.unpackb(info)["type"] == "session_info"


def test_a_client_offering_json_or_nothing_gets_text_frames_and_a_binary_frame_is_refused(
    shared_server: DaphneServer,
) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"], subprotocols=["tradesim.json"]) as ws:
        chosen = ws.subprotocol
        connected = recv_json(ws)
        ws.send(msgpack.packb(heartbeat(creds["deviceId"])))
        refused = recv_json(ws)
    assert chosen == "tradesim.json" and connected["type"] == "connected"
    assert refused["code"] == "binary_not_supported"


def test_a_client_offering_only_unknown_subprotocols_is_refused_with_4015(shared_server: DaphneServer) -> None:
    creds = login(shared_server)
    with shared_server.connect(creds["token"], creds["deviceId"], subprotocols=["graphql-ws"]) as ws:
        received, code = recv_until_closed(ws)
    assert [m["code"] for m in received] == ["unsupported_subprotocol"] and code == 4015
