"""The client library against a small scripted WebSocket server: backoff and the retry hints, the
session stream (a hole filled by a resync, a replayed push dropped), requests and their errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tradesim import Client, ProtocolError, QualityMeter, RequestTimeout, StreamTracker, backoff_delay_ms
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

EPOCH = "epoch-1"
Script = Callable[[ServerConnection, int], Awaitable[None]]


def connected(seq: int = 0, interval: int = 60_000, session: str = "s-1") -> dict[str, Any]:
    return {
        "type": "connected",
        "sessionId": session,
        "sessionToken": f"token-of-{session}",
        "userId": 1,
        "deviceId": "dev-1",
        "heartbeatInterval": interval,
        "heartbeatTimeout": interval * 3,
        "timestamp": 0,
        "sessionStatus": "active",
        "createdAt": 0,
        "expiresAt": 0,
        "resumed": False,
        "simulatorStatus": "stopped",
        "simulatorId": None,
        "maxMessageBytes": 65536,
        "sessionSeq": seq,
        "sessionEpoch": EPOCH,
    }


def push(seq: int, epoch: str = EPOCH) -> dict[str, Any]:
    return {"type": "simulator_status_update", "simulatorId": "sim", "simulatorStatus": "running",
            "timestamp": seq, "sessionId": "s-1", "sessionSeq": seq, "sessionEpoch": epoch}  # fmt: skip


async def send(ws: ServerConnection, *messages: dict[str, Any]) -> None:
    for message in messages:
        await ws.send(json.dumps(message))


async def receive(ws: ServerConnection, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return message


@asynccontextmanager
async def fake_server(script: Script) -> AsyncIterator[str]:
    """A server that runs `script(socket, n)` for its n-th connection (0, 1, ...)."""
    count = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        try:
            await script(ws, count - 1)
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


def client_for(url: str, **options: Any) -> tuple[Client, list[dict[str, Any]]]:
    client = Client(url, device_file=None, backoff_base_ms=50, backoff_cap_ms=100, **options)
    applied: list[dict[str, Any]] = []
    client.on("simulator_status_update", applied.append)
    return client, applied


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_backoff_is_full_jitter_below_a_doubling_ceiling_and_the_cap() -> None:
    assert backoff_delay_ms(0, random=lambda: 0.999) == 499
    assert backoff_delay_ms(3, random=lambda: 0.5) == 2000
    assert backoff_delay_ms(20, random=lambda: 0.999) == 29_970
    assert backoff_delay_ms(5, random=lambda: 0.0) == 0


def test_quality_is_the_worst_of_the_last_four_round_trips() -> None:
    meter = QualityMeter(1000)
    assert meter.observe(100) == "good"
    assert meter.observe(600) == "degraded"
    assert meter.missed() == "poor"
    for _ in range(3):
        assert meter.observe(10) == "poor"
    assert meter.observe(10) == "good"


def test_the_stream_tracker_applies_once_in_order_and_holds_what_is_ahead_of_a_hole() -> None:
    tracker = StreamTracker()
    tracker.reset(EPOCH, 0)
    assert tracker.accept(push(1)) == [push(1)]
    assert tracker.accept(push(3)) == [] and tracker.has_gap
    assert tracker.accept(push(1)) == []
    assert [m["sessionSeq"] for m in tracker.accept(push(2))] == [2, 3]
    assert tracker.accept(push(4, "other")) == []
    assert tracker.reset("other", 4) == [] and not tracker.has_gap
    assert (tracker.stats.applied, tracker.stats.duplicates, tracker.stats.held) == (3, 1, 2)


async def test_a_hole_that_stays_open_is_closed_by_a_resync_from_the_last_applied_push() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected(), push(1), push(3))
        resync = await receive(ws, "request_resync")
        assert (resync["lastSessionSeq"], resync["sessionEpoch"]) == (1, EPOCH)
        replay = {"type": "session_resync", "requestId": resync["requestId"], "reason": "requested",
                  "recovered": True, "replayed": 1, "sessionSeq": 3, "sessionEpoch": EPOCH}  # fmt: skip
        await send(ws, push(2), replay)

    async with fake_server(script) as url:
        client, applied = client_for(url, gap_timeout_s=0.2)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: len(applied) == 3)
        await client.close()
    assert [m["sessionSeq"] for m in applied] == [1, 2, 3]
    assert (client.stats.held, client.stats.resyncs_requested, client.stats.replayed) == (1, 1, 1)


async def test_after_a_drop_it_resumes_from_its_position_and_drops_a_push_replayed_twice() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(ws, connected(), push(1), push(2))
            await ws.close(1011, "crash")
            return
        await send(ws, connected(seq=3))
        resume = await receive(ws, "reconnect")
        assert (resume["sessionToken"], resume["lastSessionSeq"], resume["sessionEpoch"]) == ("token-of-s-1", 2, EPOCH)
        result = {"type": "reconnect_result", "requestId": resume["requestId"], "success": True,
                  "sessionId": "s-1", "sessionStatus": "active", "recovered": True, "replayed": 2,
                  "sessionSeq": 3, "sessionEpoch": EPOCH}  # fmt: skip
        await send(ws, push(2), push(3), result)

    async with fake_server(script) as url:
        client, applied = client_for(url)
        resumed: list[dict] = []
        client.on("resumed", resumed.append)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: bool(resumed))
        await client.close()
    assert [m["sessionSeq"] for m in applied] == [1, 2, 3]
    assert (client.stats.duplicates, client.stats.recovered, client.sockets_opened) == (1, 1, 2)


async def test_shutdown_and_a_busy_servers_retry_hints_set_the_next_delay() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(
                ws, connected(), {"type": "shutdown", "timestamp": 0, "reason": "restart", "reconnectAfterMs": 321}
            )
            await ws.close(4012, "shutdown")
        elif n == 1:
            busy = {"type": "error", "requestId": None, "code": "server_busy", "message": "busy", "timestamp": 0,
                    "retryAfterMs": 77}  # fmt: skip
            await send(ws, busy)
            await ws.close(4013, "busy")
        else:
            await send(ws, connected())

    async with fake_server(script) as url:
        client, _ = client_for(url, random=lambda: 0.99)
        retries: list[dict] = []
        client.on("retry", retries.append)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: client.sockets_opened == 3 and client.state == "open")
        await client.close()
    assert [(r["code"], r["delayMs"]) for r in retries] == [(4012, 321), (4013, 77)]


async def test_a_final_close_code_ends_the_client_without_reconnecting() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected())
        await ws.close(4009, "replaced")

    async with fake_server(script) as url:
        client, _ = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        ended = await asyncio.wait_for(client.wait_ended(), 5)
    assert (ended.reason, ended.code, client.sockets_opened) == ("connection_replaced", 4009, 1)


async def test_a_request_resolves_by_request_id_or_raises_the_error_or_times_out() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected())
        first = await receive(ws, "place_order")
        second = await receive(ws, "place_order")
        await receive(ws, "cancel_order")  # never answered
        # Answered out of order: each reply finds its own request.
        error = {"type": "error", "requestId": second["requestId"], "code": "invalid_message", "message": "bad",
                 "timestamp": 0, "details": [{"field": "quantity", "problem": "must be > 0"}]}  # fmt: skip
        await send(ws, error, {"type": "order_placed", "requestId": first["requestId"], "order": {"orderId": "o-1"}})

    async with fake_server(script) as url:
        client, _ = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        ok = asyncio.ensure_future(client.request("place_order", symbol="AAPL", quantity=1, limitPrice=None))
        await asyncio.sleep(0.05)
        bad = asyncio.ensure_future(client.request("place_order", symbol="AAPL", quantity=0))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeout):
            await client.request("cancel_order", orderId="o-9", timeout=0.3)
        assert (await ok)["order"]["orderId"] == "o-1"
        with pytest.raises(ProtocolError) as refused:
            await bad
        await client.close()
    assert refused.value.code == "invalid_message"
    assert refused.value.details == [{"field": "quantity", "problem": "must be > 0"}]


async def test_it_beats_at_the_servers_interval_and_reports_the_quality() -> None:
    beats: list[dict] = []

    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected(interval=100))
        for _ in range(3):
            beats.append(await receive(ws, "heartbeat"))
            await send(ws, {"type": "heartbeat_ack", "timestamp": 0, "sessionStatus": "valid",
                            "simulatorStatus": "stopped", "deviceIdValid": True})  # fmt: skip

    async with fake_server(script) as url:
        client, _ = client_for(url)
        qualities: list[dict] = []
        client.on("quality", qualities.append)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: len(qualities) >= 3)
        await client.close()
    assert [b["deviceId"] for b in beats] == ["dev-1"] * 3
    assert "rttMs" not in beats[0] and isinstance(beats[1]["rttMs"], float)
    assert all(q["quality"] in ("good", "degraded") and q["rttMs"] is not None for q in qualities[:3])


async def test_a_lost_epoch_is_not_recovered_and_the_new_streams_pushes_apply_from_its_position() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(ws, connected(), push(1))
            await ws.close(1011, "crash")
            return
        await send(ws, {**connected(seq=5), "sessionEpoch": "epoch-2"}, push(6, "epoch-2"))
        resume = await receive(ws, "reconnect")
        assert (resume["lastSessionSeq"], resume["sessionEpoch"]) == (1, EPOCH)
        result = {"type": "reconnect_result", "requestId": resume["requestId"], "success": True,
                  "sessionId": "s-1", "sessionStatus": "active", "recovered": False, "replayed": 0,
                  "sessionSeq": 5, "sessionEpoch": "epoch-2"}  # fmt: skip
        await send(ws, result, push(7, "epoch-2"))

    async with fake_server(script) as url:
        client, applied = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: len(applied) == 3)
        await client.close()
    assert [(m["sessionEpoch"], m["sessionSeq"]) for m in applied] == [(EPOCH, 1), ("epoch-2", 6), ("epoch-2", 7)]
    assert (client.stats.not_recovered, client.stats.held, client.stats.duplicates) == (1, 1, 0)


async def test_the_access_token_is_renewed_in_band_before_it_expires() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        expires = int(time.time() * 1000) + 1000
        await send(ws, {**connected(), "tokenExpiresAt": expires})
        renew = await receive(ws, "refresh_token")
        await send(ws, {"type": "token_refreshed", "requestId": renew["requestId"], "token": "t-2",
                        "expiresAt": expires + 86_400_000, "timestamp": 0})  # fmt: skip

    async with fake_server(script) as url:
        client, _ = client_for(url)
        tokens: list[dict] = []
        client.on("token", tokens.append)
        await client.connect(token="t-1", device_id="dev-1")
        await until(lambda: bool(tokens))
        await client.close()
    assert client.token == "t-2" and tokens[0]["token"] == "t-2"


def unavailable(request_id: str, retry_after_ms: int | None = None) -> dict[str, Any]:
    error = {"type": "error", "requestId": request_id, "code": "service_unavailable", "message": "later",
             "timestamp": 0}  # fmt: skip
    return error if retry_after_ms is None else {**error, "retryAfterMs": retry_after_ms}


async def test_a_reconnect_refused_as_unavailable_is_sent_again_on_the_same_socket_then_resumes() -> None:
    attempts: list[dict] = []

    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(ws, connected(), push(1))
            await ws.close(1011, "crash")
            return
        await send(ws, connected(seq=1))
        for _ in range(2):
            attempts.append(await receive(ws, "reconnect"))
            await send(ws, unavailable(attempts[-1]["requestId"], retry_after_ms=30))
        attempts.append(await receive(ws, "reconnect"))
        await send(ws, {"type": "reconnect_result", "requestId": attempts[-1]["requestId"], "success": True,
                        "sessionId": "s-1", "sessionStatus": "active", "recovered": True, "replayed": 0,
                        "sessionSeq": 1, "sessionEpoch": EPOCH})  # fmt: skip

    async with fake_server(script) as url:
        client, _ = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: client.stats.recovered == 1)
        await client.close()
    assert len(attempts) == 3 and len({a["requestId"] for a in attempts}) == 3
    assert client.sockets_opened == 2 and client.stats.resyncs_requested == 0


async def test_a_reconnect_that_keeps_failing_falls_back_to_a_resync_from_the_last_applied_push() -> None:
    resyncs: list[dict] = []

    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(ws, connected(), push(1), push(2))
            await ws.close(1011, "crash")
            return
        await send(ws, connected(seq=2))
        for _ in range(5):
            await send(ws, unavailable((await receive(ws, "reconnect"))["requestId"]))
        resyncs.append(await receive(ws, "request_resync"))

    async with fake_server(script) as url:
        client, _ = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: bool(resyncs))
        await client.close()
    assert (resyncs[0]["lastSessionSeq"], resyncs[0]["sessionEpoch"]) == (2, EPOCH)
    assert client.stats.resyncs_requested == 1


async def test_a_heartbeat_left_unacknowledged_for_an_interval_turns_the_quality_poor() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected(interval=100))  # and never acknowledges a beat

    async with fake_server(script) as url:
        client, _ = client_for(url)
        qualities: list[dict] = []
        client.on("quality", qualities.append)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: bool(qualities))
        await client.close()
    assert qualities[0] == {"quality": "poor", "rttMs": None}


async def test_a_reconnect_retry_pending_for_a_socket_that_dropped_is_not_sent_on_the_next_one() -> None:
    on_third: list[dict] = []

    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await send(ws, connected(), push(1))
            await ws.close(1011, "crash")
        elif n == 1:
            await send(ws, connected(seq=1))
            await send(ws, unavailable((await receive(ws, "reconnect"))["requestId"], retry_after_ms=300))
            await ws.close(1011, "crash again")
        else:
            await send(ws, connected(seq=1))
            while True:
                on_third.append(await receive(ws, "reconnect"))

    async with fake_server(script) as url:
        client, _ = client_for(url)
        await client.connect(token="t", device_id="dev-1")
        await until(lambda: client.sockets_opened == 3 and bool(on_third))
        await asyncio.sleep(0.6)  # past the first socket's retry slot
        await client.close()
    assert len(on_third) == 1


async def test_a_socket_that_brings_nothing_for_the_heartbeat_timeout_is_given_up_and_replaced() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected(interval=100))
        if n == 0:
            return  # then silent, the socket open: a path that no longer carries anything
        while True:
            beat = await receive(ws, "heartbeat")
            await send(ws, {"type": "heartbeat_ack", "timestamp": beat["timestamp"], "sessionStatus": "valid",
                            "serverTime": 0})  # fmt: skip

    async with fake_server(script) as url:
        client, _ = client_for(url)
        retries: list[dict] = []
        client.on("retry", retries.append)
        await client.connect(token="t", device_id="dev-1")
        started = time.monotonic()
        await until(lambda: client.sockets_opened == 2 and client.state == "open")
        given_up_after = time.monotonic() - started
        await asyncio.sleep(0.6)  # answered beats: the second socket is kept
        assert client.sockets_opened == 2
        await client.close()
    assert retries and retries[0]["code"] == 1006
    assert given_up_after >= 0.4  # not before the timeout plus an interval (300 + 100 ms)


async def test_a_flow_controlled_subscription_acknowledges_the_ticks_it_handled_at_half_the_window() -> None:
    received: dict[str, Any] = {}
    acks: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, n: int) -> None:
        await send(ws, connected())
        asked = received["subscribe"] = await receive(ws, "subscribe_market")
        reply = {"type": "market_subscription", "requestId": asked["requestId"], "success": True, "symbols": ["AAPL"]}
        await send(ws, {**reply, "window": 4})
        await send(ws, *({"type": "exchange_data", "timestamp": 0, "symbols": {}, "seq": seq} for seq in range(1, 6)))
        acks.append(await receive(ws, "market_ack"))
        acks.append(await receive(ws, "market_ack"))

    async with fake_server(script) as url:
        client, _ = client_for(url)
        handled: list[int] = []
        client.on("exchange_data", lambda tick: handled.append(tick["seq"]))
        await client.connect(token="t", device_id="dev-1")
        await client.request("subscribe_market", symbols=None)
        await until(lambda: len(acks) == 2)
        await client.close()

    assert received["subscribe"]["flowControl"] is True
    assert handled == [1, 2, 3, 4, 5]
    assert [(ack["seq"], ack["deviceId"]) for ack in acks] == [(2, "dev-1"), (4, "dev-1")]
