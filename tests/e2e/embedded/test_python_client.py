"""The Python client library (tools/python-client) against daphne: login and connect, every
request's reply and its error, and a SIGTERMed server's `shutdown` hint honoured on the way back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tradesim import ApiError, Client, ProtocolError, SessionEnded

from tests.support.liveserver import ROOT, DaphneServer
from tests.support.servers import RELAXED_LOGIN_THROTTLE, running_server

MARKET = {"MARKET_TICK_MS": "200", "WS_HEARTBEAT_INTERVAL_MS": "500"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("pyclient"), **MARKET) as server:
        yield server


def user(server: DaphneServer) -> tuple[str, str]:
    name, password = f"py-{uuid.uuid4().hex[:8]}", "pw-for-tests-123"
    server.issue_token(name, "--password", password)
    return name, password


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def refused(call: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as error:
        await call
    return error.value


async def test_it_logs_in_keeps_its_device_id_in_a_file_and_connects(server: DaphneServer, tmp_path: Path) -> None:
    name, password = user(server)
    device_file = tmp_path / "device"
    async with Client(server.http, device_file=device_file) as first:
        connected = await first.connect(username=name, password=password)
        assert first.state == "open" and connected["deviceId"] == device_file.read_text().strip()
        qualities: list[dict] = []
        first.on("quality", qualities.append)
        await until(lambda: len(qualities) >= 2)  # beats at the server's 500 ms
    async with Client(server.http, device_file=device_file) as second:
        again = await second.connect(username=name, password=password)
    async with Client(server.http, device_file=device_file, use_tickets=True) as ticketed:
        third = await ticketed.connect(username=name, password=password)  # ?ticket=…, not the token
        assert (await ticketed.request("request_session_info"))["sessionId"] == third["sessionId"]
    assert again["deviceId"] == connected["deviceId"] and again["sessionId"] == connected["sessionId"]
    assert all(q["quality"] in ("good", "degraded") for q in qualities)
    with pytest.raises(ApiError) as bad:
        await Client(server.http, device_file=None).connect(username=name, password="wrong")
    assert (bad.value.status, bad.value.code) == (401, "invalid_credentials")


async def test_every_request_gets_its_reply_or_its_typed_error(server: DaphneServer, tmp_path: Path) -> None:
    name, password = user(server)
    async with Client(server.http, device_file=tmp_path / "device") as client:
        connected = await client.connect(username=name, password=password)
        info = await client.request("request_session_info")
        assert info["type"] == "session_info" and info["sessionId"] == connected["sessionId"]
        other_device = await refused(client.request("request_session_info", deviceId="dev-someone-else"))
        assert other_device.code == "device_id_mismatch"

        assert (await refused(client.request("stop_simulator"))).code == "simulator_not_running"
        assert (await refused(client.request("place_order", symbol="AAPL", side="buy", orderType="market",
                                             quantity=1))).code == "simulator_not_running"  # fmt: skip
        started = await client.request("start_simulator")
        assert started["type"] == "simulator_started" and started["success"] is True
        assert (await refused(client.request("start_simulator"))).code == "simulator_already_running"
        await until(lambda: client.simulator_status == "running" and bool(client.prices))

        subscribed = await client.request("subscribe_market", symbols=["AAPL"])
        assert subscribed["type"] == "market_subscription" and subscribed["symbols"] == ["AAPL"]
        assert (await refused(client.request("subscribe_market", symbols=["NOPE"]))).code == "unknown_symbol"
        snapshot = await client.request("request_exchange_data")
        assert snapshot["type"] == "exchange_data_status" and snapshot["reason"] == "request"

        placed = await client.request("place_order", symbol="AAPL", side="buy", orderType="limit", quantity=1,
                                      limitPrice=1.0)  # fmt: skip
        order_id = placed["order"]["orderId"]
        assert placed["type"] == "order_placed" and placed["order"]["status"] == "new"
        bad_quantity = await refused(client.request("place_order", symbol="AAPL", side="buy", orderType="market",
                                                    quantity=1.123456789))  # fmt: skip
        assert bad_quantity.code == "invalid_quantity"
        malformed = await refused(client.request("place_order", symbol="AAPL", side="buy", orderType="market"))
        assert malformed.code == "invalid_message" and malformed.details[0]["field"] == "quantity"
        canceled = await client.request("cancel_order", orderId=order_id)
        assert canceled["type"] == "order_canceled" and canceled["order"]["status"] == "canceled"
        assert (await refused(client.request("cancel_order", orderId=order_id))).code == "order_not_cancelable"
        assert (await refused(client.request("cancel_order", orderId=str(uuid.uuid4())))).code == "order_not_found"

        refreshed = await client.request("refresh_token")
        assert refreshed["type"] == "token_refreshed" and refreshed["token"] != client.token
        resync = await client.request("request_resync", lastSessionSeq=client.stream.last,
                                      sessionEpoch=client.stream.epoch)  # fmt: skip
        assert resync["type"] == "session_resync" and resync["recovered"] is True
        stopped = await client.request("stop_simulator")
        assert stopped["type"] == "simulator_stopped" and stopped["success"] is True
        await until(lambda: client.simulator_status == "stopped")

        session_stopped = await client.request("stop_session")
        assert session_stopped["type"] == "session_stopped" and session_stopped["success"] is True
        ended = await asyncio.wait_for(client.wait_ended(), 10)
    assert (ended.reason, ended.code) == ("session_stopped", 4010)
    assert client.stats.duplicates == 0 and client.stats.held == 0


async def test_a_sigtermed_servers_shutdown_hint_sets_when_the_client_comes_back(tmp_path: Path) -> None:
    with running_server(tmp_path, SHUTDOWN_RETRY_AFTER_MIN_MS="1500", SHUTDOWN_RETRY_AFTER_MAX_MS="2500") as first:
        name, password = user(first)
        client = Client(first.http, device_file=tmp_path / "device", backoff_base_ms=50, backoff_cap_ms=100)
        shutdowns: list[dict] = []
        retries: list[dict] = []
        client.on("shutdown", shutdowns.append)
        client.on("retry", retries.append)
        try:
            await client.connect(username=name, password=password)
            await asyncio.to_thread(first.stop, signal.SIGTERM)
            await until(lambda: bool(retries))
            # The same port and database: the restarted process.
            second = DaphneServer(env={**first.env, **RELAXED_LOGIN_THROTTLE}, port=first.port).start(tmp_path)
            try:
                await until(lambda: client.state == "open" and client.sockets_opened == 2, timeout=30)
            finally:
                second.stop()
        finally:
            await client.close()
    hint = shutdowns[0]["reconnectAfterMs"]
    assert 1500 <= hint <= 2500 + 30_000
    assert (retries[0]["code"], retries[0]["delayMs"]) == (4012, hint)  # not the 100 ms backoff


async def test_a_client_that_cannot_reach_the_server_gives_up_after_its_attempts(tmp_path: Path) -> None:
    from tests.support.liveserver import free_port

    client = Client(f"http://127.0.0.1:{free_port()}", device_file=None, max_attempts=2, backoff_base_ms=10)
    with pytest.raises(SessionEnded) as ended:
        await client.connect(token="t", device_id="dev-x")
    assert ended.value.reason == "gave_up"


def test_the_example_bot_trades_on_the_live_market_for_a_few_seconds(server: DaphneServer, tmp_path: Path) -> None:
    name, password = user(server)
    bot = ROOT / "tools" / "python-client" / "examples" / "ma_crossover.py"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tools" / "python-client" / "src"),
        "TRADESIM_HOME": str(tmp_path),
    }
    args = ["--server", server.http, "--user", name, "--password", password, "--fast", "2", "--slow", "4"]
    run = subprocess.run(
        [sys.executable, str(bot), *args, "--seconds", "8"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    orders = int(run.stdout.rsplit("done: ", 1)[1].split()[0])
    assert orders >= 1 and run.stdout.startswith("buy ")
    token = server.login(name, password)["token"]
    status, fills = server.request("GET", "/api/market/fills/", token=token)
    assert status == 200 and len(fills) >= 1 and fills[0]["symbol"] == "AAPL"


async def test_a_refused_handshake_ends_the_client_with_the_servers_reason(server: DaphneServer) -> None:
    creds = server.issue_token(f"py-{uuid.uuid4().hex[:8]}")
    status, _ = server.request("POST", "/api/auth/token/revoke/", token=creds["token"])
    assert status == 204
    client = Client(server.http, device_file=None)
    with pytest.raises(SessionEnded) as ended:
        await client.connect(token=creds["token"], device_id=creds["deviceId"])
    assert (ended.value.reason, ended.value.code) == ("auth_failed", 4001)
    assert ended.value.message.startswith("token_revoked: ") and client.sockets_opened == 1


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_it_keeps_the_subscribed_books_and_asks_again_for_one_that_falls_out_of_step(
    server: DaphneServer, tmp_path: Path, encoding: str
) -> None:
    name, password = user(server)
    async with Client(server.http, device_file=tmp_path / "device", encoding=encoding) as client:
        await client.connect(username=name, password=password)
        frames = []
        client.on("message", lambda message: frames.append(message))
        await client.request("start_simulator")
        await client.request("subscribe_market", symbols=["AAPL"], depth=10, bookDeltas=True)
        changes: list[dict] = []
        replies: list[dict] = []
        client.on("orderbook", changes.append)
        client.on("book", lambda message: replies.append(message) if message.get("requestId") else None)
        await until(lambda: len(changes) >= 3)
        assert replies == []
        # A best bid the server never sent (inside the spread: no update removes it): the next
        # update's checksum cannot match, and the client asks again.
        kept = client.books.books["AAPL"]
        bogus = kept.best_bids(1)[0][0] + 0.001
        kept.bids[bogus] = 1.0
        await until(lambda: len(replies) == 1)
        seen = len(changes)
        await until(lambda: len(changes) >= seen + 2)

    assert replies[0]["books"]["AAPL"]["action"] == "snapshot"
    assert {"book", "exchange_data", "market_subscription"} <= {m["type"] for m in frames}
    book = client.books.books["AAPL"]
    assert bogus not in book.bids and len(book.best_bids()) == len(book.best_asks()) == 10
    assert book.best_bids(1)[0][0] < book.best_asks(1)[0][0]
