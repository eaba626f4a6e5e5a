"""Liveness answers while the process runs; readiness checks the database and the channel layer."""

from __future__ import annotations

from pathlib import Path

from tests.support.liveserver import DaphneServer, base_env, free_port
from tests.support.production import POSTGRES_URL, production_env


def test_a_healthy_server_is_live_and_ready(shared_server: DaphneServer) -> None:
    live_status, live = shared_server.request("GET", "/healthz")
    ready_status, ready = shared_server.request("GET", "/readyz")
    assert live_status == 200 and live == {"status": "ok"}
    assert ready_status == 200 and ready["status"] == "ready"
    assert ready["checks"]["database"]["ok"] and ready["checks"]["channelLayer"]["ok"]


def test_without_redis_or_the_database_the_server_is_live_but_not_ready(tmp_path: Path) -> None:
    # Production settings pointing at ports where nothing listens; the process itself runs.
    env = production_env(POSTGRES_URL.replace(":5432/", f":{free_port()}/"))
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    server = DaphneServer(env=base_env(**env)).start(tmp_path)
    try:
        live_status, _ = server.request("GET", "/healthz")
        ready_status, ready = server.request("GET", "/readyz")
    finally:
        server.stop()
    assert live_status == 200
    assert ready_status == 503 and ready["status"] == "unavailable"
    assert not ready["checks"]["database"]["ok"] and not ready["checks"]["channelLayer"]["ok"]
    assert ready["checks"]["channelLayer"]["error"]
