"""A client that stops reading gets the newest prices, not an ever-growing backlog,
and still every order update (daphne over a real, deliberately slow socket)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.liveserver import DaphneServer, base_env, manage, request
from tests.support.servers import RELAXED_LOGIN_THROTTLE, migrated_database

pytestmark = [pytest.mark.e2e]

# Big ticks (with the 10 book levels per side the client asks for, about 150 KB each), so the kernel's
# buffers fill within seconds although the producer computes 300 books per profile and tick.
EXTRA_INSTRUMENTS = 300
CREATE_INSTRUMENTS = f"""
from decimal import Decimal
from market_app.models import Instrument
Instrument.objects.bulk_create(
    Instrument(symbol=f"X{{n:03d}}", name=f"Test {{n}}", tick_size=Decimal("0.01"), start_price=Decimal("100"),
               base_volume=100)
    for n in range({EXTRA_INSTRUMENTS})
)
"""


class SlowClient:
    """A WebSocket client that reads its socket only when asked (websockets' sans-I/O protocol
    over a plain socket with a small receive buffer), to play a phone on a bad network."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((uri.host, uri.port))
        self.protocol = ClientProtocol(uri, max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.pending: list[dict] = []
        self.upgraded = False
        while not self.upgraded:
            self._events_until_any()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.sock.sendall(data)

    def _events_until_any(self) -> None:
        # One read may hold the 101 response and the first frames together: note each event,
        # never only the last one.
        self.sock.settimeout(10)
        self.protocol.receive_data(self.sock.recv(65536))
        self._flush()
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self.upgraded = True
            elif isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                self.pending.append(json.loads(event.data))

    def send_json(self, message: dict) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def recv_json(self, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while not self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError("no message")
            self._events_until_any()
        return self.pending.pop(0)

    def recv_until(self, kind: str, **fields: object) -> dict:
        while True:
            message = self.recv_json()
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DaphneServer]:
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'conflation.sqlite3'}",
        MARKET_TICK_MS="10",
        **RELAXED_LOGIN_THROTTLE,
    )
    migrated_database(tmp_path / "conflation.sqlite3")
    manage(env, "shell", "-c", CREATE_INSTRUMENTS)
    server = DaphneServer(env=env).start(tmp_path)
    yield server
    server.stop()


def test_a_client_that_stops_reading_gets_conflated_prices_and_every_order_update(server: DaphneServer) -> None:
    creds = server.login("demo", "demo-password")
    url = f"{server.ws}/ws/session/?token={creds['token']}&deviceId={creds['deviceId']}"
    ws = SlowClient(url)
    try:
        ws.recv_until("connected")
        ws.send_json(request("start_simulator", creds["deviceId"], "start"))
        ws.recv_until("exchange_data_status", reason="simulator_started")
        ws.send_json(request("subscribe_market", creds["deviceId"], "deep", depth=10, candles=["1s"]))
        ws.recv_until("market_subscription")
        first = ws.recv_until("exchange_data")

        time.sleep(6)  # stop reading while about 600 ticks are produced
        status, placed = server.request(
            "POST",
            "/api/market/orders/",
            {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0},
            token=creds["token"],
        )
        time.sleep(1)

        seqs: list[int] = []
        ticks: list[dict] = []
        order_updates = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = ws.recv_json()
            if message["type"] == "exchange_data":
                seqs.append(message["seq"])
                ticks.append(message)
                latest_seq = message["seq"]
                if order_updates and time.monotonic() > deadline - 15:
                    break
            elif message["type"] == "exchange_data_status":
                order_updates.append(message)
    finally:
        ws.close()

    assert status == 201
    assert any(placed["orderId"] in update["userOrders"] for update in order_updates), "an order update was lost"
    # While the client did not read (until the order, whose update names the feed's tick then),
    # far fewer ticks reached it than were produced: those were merged, not queued.
    paused_until = next(u["seq"] for u in order_updates if placed["orderId"] in u["userOrders"])
    produced = paused_until - first["seq"]
    delivered = sum(1 for seq in seqs if seq <= paused_until)
    assert latest_seq > paused_until and delivered < produced * 0.6, (delivered, produced)
    assert any(b - a > 1 for a, b in itertools.pairwise(seqs)), "no tick was conflated"
    assert seqs == sorted(seqs)
    # A merged tick still carries every symbol's newest book levels and open candle.
    assert all(
        set(tick["depth"]) == set(tick["symbols"]) == set(tick["candles"]) and len(tick["depth"]["AAPL"]["asks"]) == 10
        for tick in ticks
    )
