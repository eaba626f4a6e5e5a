"""docs/scaling.md's pgbouncer recipe for real: a daphne process and a simulator worker reach
PostgreSQL only through pgbouncer in transaction pooling mode, and a trader's whole journey works
(login, socket, simulator, an order filled by the worker, a session resumed), on no more server
connections than pgbouncer's pool."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.support.faults import start_simulator
from tests.support.liveserver import manage, reconnect, recv_json, recv_until, send_json, wait_until
from tests.support.pgbouncer import PgBouncer
from tests.support.production import production_cluster

FILLED = """
SELECT COUNT(*) FROM market_app_order o JOIN auth_user u ON u.id = o.user_id
 WHERE u.username = 'demo' AND o.status = 'filled'
"""
SERVER_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_a_trader_journey_runs_through_pgbouncer_in_transaction_mode(tmp_path: Path) -> None:
    bouncer = PgBouncer(pool_size=4).start()
    try:
        with production_cluster(tmp_path, {}, servers=1, workers=1) as cluster:
            manage(cluster.env, "ensure_demo_user")
            # From here on the server and the worker reach PostgreSQL only through pgbouncer.
            through = {**cluster.env, "DATABASE_URL": bouncer.url(cluster.database_url)}
            server = cluster.servers[0]
            server.stop()
            server.env = through
            server.start(tmp_path)
            cluster.workers[0].stop()
            cluster.env = through
            cluster.start_worker()
            peak = [0]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], cluster.query(SERVER_CONNECTIONS)[0][0])
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                creds = server.login("demo", "demo-password")
                start_simulator(server, creds)
                status, order = server.request(
                    "POST",
                    "/api/market/orders/",
                    {"symbol": "AAPL", "side": "buy", "orderType": "market", "quantity": 1},
                    token=creds["token"],
                )
                assert status == 201, order
                assert wait_until(lambda: cluster.query(FILLED)[0][0] == 1, 30)
                with server.connect(creds["token"], creds["deviceId"]) as ws:
                    connected = recv_json(ws)
                    send_json(ws, reconnect(creds["deviceId"], connected["sessionToken"], "r1"))
                    result, _ = recv_until(ws, "reconnect_result", ignore=("exchange_data", "exchange_data_status"))
            finally:
                stop.set()
                sampler.join(timeout=5)
        assert connected["type"] == "connected" and connected["simulatorStatus"] == "running"
        assert (result["requestId"], result["success"], result["simulatorStatus"]) == ("r1", True, "running")
        # The processes' own pools would allow 20; pgbouncer ran all of it on its 4.
        assert 0 < peak[0] <= 4, peak[0]
    finally:
        bouncer.stop()
