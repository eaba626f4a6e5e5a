"""The Python client through a server killed outright, in production mode (PostgreSQL, Redis,
a simulator worker): the client holds a position and open orders, its daphne is SIGKILLed, orders
change while it is gone, and the restarted process replays what it missed, each push applied once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tradesim import Client

from sessions_app.groups import user_group
from sessions_app.realtime.redis_layer import RedisPubSubLayer
from tests.support.liveserver import DaphneServer
from tests.support.production import Cluster, production_cluster

SETTINGS = {"MARKET_TICK_MS": "100", "SIMULATOR_LEASE_TTL_MS": "2000", "SIMULATOR_LEASE_RENEW_MS": "500"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with production_cluster(tmp_path_factory.mktemp("pyclient-prod"), SETTINGS, servers=2, workers=1) as cluster:
        yield cluster


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.timeout(180)
async def test_a_sigkilled_server_restarted_replays_every_missed_push_once_and_in_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    first, other = cluster.servers
    name = f"pyk-{uuid.uuid4().hex[:8]}"
    first.issue_token(name, "--password", "pw-for-tests-123")
    client = Client(first.http, device_file=tmp_path / "device", backoff_base_ms=200, backoff_cap_ms=1000)
    applied: list[tuple[str, int]] = []  # every numbered push the client delivered, in order
    snapshots: list[dict] = []  # the account snapshots among them

    def record(message: dict) -> None:
        if "sessionSeq" in message and message["type"] not in ("connected", "reconnect_result", "session_resync"):
            applied.append((message["sessionEpoch"], message["sessionSeq"]))
            if message["type"] == "exchange_data_status":
                snapshots.append(message)

    def pushed_as_new(order_ids: list[str]) -> bool:
        orders = snapshots[-1]["userOrders"] if snapshots else {}
        return all(orders.get(o, {}).get("status") == "new" for o in order_ids)

    client.on("message", record)
    # What the user's connections are sent, heard on the channel layer as a third process would.
    layer = RedisPubSubLayer(
        shards=[{"url": cluster.env["REDIS_URL"]}], prefix=cluster.env.get("CHANNEL_LAYER_PREFIX", "asgi")
    )
    try:
        await client.connect(username=name, password="pw-for-tests-123")
        listener = await layer.new_channel()
        await layer.group_add(user_group(int(client.session["userId"])), listener)
        await client.request("start_simulator")
        await until(lambda: client.simulator_status == "running" and "AAPL" in client.prices)
        await client.request("place_order", symbol="AAPL", side="buy", orderType="market", quantity=3)
        await until(lambda: client.positions.get("AAPL", {}).get("quantity") == 3)
        limit = {"symbol": "AAPL", "side": "buy", "orderType": "limit", "quantity": 1, "limitPrice": 1.0}
        resting = [(await client.request("place_order", **limit))["order"]["orderId"] for _ in range(2)]
        # The replies come first; wait for the pushes of both orders, so none is still on its way.
        await until(lambda: pushed_as_new(resting))
        before_kill = len(applied)

        first.stop(signal.SIGKILL)
        await until(lambda: client.state == "reconnecting")
        # While it is gone, its orders change through the other server: pushes nobody receives.
        token = client.token
        cancel = f"/api/market/orders/{resting[0]}/cancel/"
        status, _ = await asyncio.to_thread(other.request, "POST", cancel, token=token)
        assert status == 200
        ticket = {"symbol": "MSFT", "side": "buy", "orderType": "limit", "quantity": 2, "limitPrice": 1.0}
        status, placed = await asyncio.to_thread(other.request, "POST", "/api/market/orders/", ticket, token=token)
        assert status == 201
        # Its push was sent while the client was away (published, so the restarted server cannot
        # deliver it live): wait for that, not for a time.
        async with asyncio.timeout(30):
            while placed["orderId"] not in (await layer.receive(listener))["payload"]:
                pass
        assert len(applied) == before_kill  # nothing reached the client meanwhile

        restarted = DaphneServer(env=cluster.env, port=first.port).start(cluster.directory)
        cluster.servers.append(restarted)
        await until(lambda: client.stats.recovered == 1, timeout=60)
        await until(lambda: placed["orderId"] in client.orders)
    finally:
        await client.close()
        await layer.flush()

    epochs = {epoch for epoch, _ in applied}
    seqs = [seq for _, seq in applied]
    assert len(epochs) == 1 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no hole, nothing twice
    assert len(applied) - before_kill == client.stats.replayed >= 2
    assert client.stats.not_recovered == 0 and client.stats.resyncs_requested == 0
    assert client.orders[resting[0]]["status"] == "canceled" and client.orders[resting[1]]["status"] == "new"
    assert client.positions["AAPL"]["quantity"] == 3
    (quantity,) = cluster.query(
        "SELECT p.quantity FROM market_app_position p JOIN auth_user u ON u.id = p.user_id "
        "JOIN market_app_instrument i ON i.id = p.instrument_id WHERE u.username = %s AND i.symbol = 'AAPL'",
        name,
    )[0]
    assert quantity == 3
