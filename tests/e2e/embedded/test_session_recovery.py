"""Recovery on reconnect, over real sockets against daphne: pushes missed while away are
replayed in order before `reconnect_result`; what cannot be replayed ends in a resync."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection

from tests.support.liveserver import DaphneServer, reconnect, recv_json, recv_until, request, send_json
from tests.support.servers import running_server

MARKET = {"MARKET_TICK_MS": "200", "SIMULATOR_LEASE_TTL_MS": "2000", "SIMULATOR_LEASE_RENEW_MS": "500"}
STREAM_TYPES = ("simulator_status_update", "exchange_data_status", "device_id_invalidated")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("recovery"), **MARKET) as server:
        yield server


def numbered(messages: list[dict]) -> list[dict]:
    return [m for m in messages if "sessionSeq" in m and m["type"] in STREAM_TYPES]


def start_trading(server: DaphneServer) -> tuple[dict, dict, int]:
    """A user whose simulator runs; returns credentials, the first `connected`, and the last number seen."""
    creds = server.issue_token(f"rec-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws)
        send_json(ws, request("start_simulator", creds["deviceId"], "start"))
        running, before = recv_until(ws, "simulator_status_update", simulatorStatus="running")
    seen = numbered([*before, running])
    assert [m["sessionSeq"] for m in seen] == list(range(connected["sessionSeq"] + 1, running["sessionSeq"] + 1))
    return creds, connected, running["sessionSeq"]


def place_limit_orders(server: DaphneServer, creds: dict, count: int) -> list[str]:
    ids = []
    for n in range(count):
        ticket = {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1 + n, "limitPrice": 1.0}
        status, order = server.request("POST", "/api/market/orders/", ticket, token=creds["token"])
        assert status == 201, order
        ids.append(order["orderId"])
    return ids


def reconnect_with(ws: ClientConnection, creds: dict, session_token: str, **position: object) -> tuple[dict, list]:
    send_json(ws, {**reconnect(creds["deviceId"], session_token, "re"), **position})
    return recv_until(ws, "reconnect_result", ignore=("exchange_data",))


def test_pushes_missed_while_away_are_replayed_in_order_before_the_reply(server: DaphneServer) -> None:
    creds, first, last_seen = start_trading(server)
    order_ids = place_limit_orders(server, creds, 3)  # three order updates pushed to nobody
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        second = recv_json(ws, ignore=("exchange_data",))
        result, before = reconnect_with(
            ws, creds, first["sessionToken"], lastSessionSeq=last_seen, sessionEpoch=first["sessionEpoch"]
        )
        snapshots_after, _ = recv_until(ws, "exchange_data", ignore=("exchange_data",)), None
    replayed = numbered(before)
    assert second["sessionEpoch"] == first["sessionEpoch"] and second["sessionSeq"] == last_seen + 3
    assert [m["sessionSeq"] for m in replayed] == [last_seen + 1, last_seen + 2, last_seen + 3]
    assert all(m["type"] == "exchange_data_status" and m["reason"] == "orders_changed" for m in replayed)
    assert set(replayed[-1]["userOrders"]) >= set(order_ids)
    assert result["success"] and result["recovered"] is True and result["replayed"] == 3
    assert (result["sessionSeq"], result["sessionEpoch"]) == (last_seen + 3, first["sessionEpoch"])
    assert not [m for m in before if m.get("reason") in ("resync", "reconnected")]  # nothing else was needed
    assert snapshots_after[0]["type"] == "exchange_data"


def test_a_position_from_another_epoch_is_not_recovered_and_a_fresh_snapshot_follows(server: DaphneServer) -> None:
    creds, first, last_seen = start_trading(server)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=("exchange_data",))
        result, before = reconnect_with(ws, creds, first["sessionToken"], lastSessionSeq=last_seen, sessionEpoch="old")
        snapshot, _ = recv_until(ws, "exchange_data_status", reason="resync", ignore=("exchange_data",))
    assert result["success"] and result["recovered"] is False and result["replayed"] == 0
    assert numbered(before) == []
    assert snapshot["account"]["cash"] == 100_000 and "sessionSeq" not in snapshot


def test_a_position_ahead_of_the_stream_is_not_recovered(server: DaphneServer) -> None:
    creds, first, last_seen = start_trading(server)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=("exchange_data",))
        result, _ = reconnect_with(
            ws, creds, first["sessionToken"], lastSessionSeq=last_seen + 50, sessionEpoch=first["sessionEpoch"]
        )
        recv_until(ws, "exchange_data_status", reason="resync", ignore=("exchange_data",))
    assert result["recovered"] is False


def test_a_client_can_ask_for_a_resync_from_its_position_or_from_scratch(server: DaphneServer) -> None:
    creds, first, last_seen = start_trading(server)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        connected = recv_json(ws, ignore=("exchange_data",))
        place_limit_orders(server, creds, 1)
        update, _ = recv_until(ws, "exchange_data_status", reason="orders_changed", ignore=("exchange_data",))
        # It saw the update, then thinks it missed it: the buffer still has it.
        send_json(
            ws,
            request(
                "request_resync",
                creds["deviceId"],
                "rs-1",
                lastSessionSeq=last_seen,
                sessionEpoch=first["sessionEpoch"],
            ),
        )
        partial, replay = recv_until(ws, "session_resync", ignore=("exchange_data",))
        send_json(ws, request("request_resync", creds["deviceId"], "rs-2"))
        full, _ = recv_until(ws, "session_resync", ignore=("exchange_data",))
        snapshot, _ = recv_until(ws, "exchange_data_status", reason="resync", ignore=("exchange_data",))
    assert update["sessionSeq"] == connected["sessionSeq"] + 1 == last_seen + 1
    assert [m["sessionSeq"] for m in numbered(replay)] == [last_seen + 1]
    assert partial["requestId"] == "rs-1" and partial["recovered"] is True and partial["replayed"] == 1
    assert full["requestId"] == "rs-2" and full["recovered"] is False and full["reason"] == "requested"
    assert full["sessionSeq"] == last_seen + 1 and full["simulatorStatus"] == "running"
    assert len(snapshot["userOrders"]) == 1


def test_device_invalidation_is_numbered_in_the_stream(server: DaphneServer) -> None:
    creds, _, last_seen = start_trading(server)
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        recv_json(ws, ignore=("exchange_data",))
        status, _ = server.request(
            "POST", f"/api/devices/{creds['deviceId']}/invalidate/", {"reason": "lost phone"}, token=creds["token"]
        )
        invalidated, before = recv_until(ws, "device_id_invalidated", ignore=("exchange_data", "exchange_data_status"))
    assert status == 200
    seqs = [m["sessionSeq"] for m in numbered([*before, invalidated])]
    assert seqs == list(range(last_seen + 1, last_seen + 1 + len(seqs))) and seqs[-1] == invalidated["sessionSeq"]
