"""PostgreSQL connections per process stay within the pool's bound (DATABASE_POOL_MAX_SIZE) while
a burst of HTTP requests and sockets, each on a thread of its own, hits one production server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.liveserver import DaphneServer, manage, recv_json, request, send_json
from tests.support.production import Cluster, production_cluster

CLIENTS = 12
REQUESTS = 40
POOL = 4
# The deployment's hasher, not the tests' fast one: a login holds its connection through PBKDF2.
SLOW_LOGINS = {"PASSWORD_HASHERS": "django.contrib.auth.hashers.PBKDF2PasswordHasher"}


class Sampler:
    """The peak of pg_stat_activity's connections per process (by application_name) while it runs."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.peak: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rows = self.cluster.query(
                "SELECT application_name, count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name LIKE 'trading:%%' GROUP BY 1"
            )
            for name, count in rows:
                self.peak[name] = max(self.peak[name], count)
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def burst(server: DaphneServer) -> list[str]:
    """Bursts, one after the other, each on CLIENTS threads at once: logins (a slow password hash
    each, its connection held meanwhile), sockets that ask for their session, authenticated reads.
    In one mixed burst a pool this small would hold the handshakes past daphne's 5 s connect
    timeout behind the logins (docs/scaling.md sizes the pool for that). Returns each outcome."""
    with ThreadPoolExecutor(CLIENTS) as pool:
        logins = list(pool.map(lambda _: server.login("demo", "demo-password"), range(CLIENTS)))

        def session_info(index: int) -> str:
            creds = logins[index]
            with server.connect(creds["token"], creds["deviceId"]) as ws:
                assert recv_json(ws)["type"] == "connected"
                send_json(ws, request("request_session_info", creds["deviceId"], f"r{index}"))
                return str(recv_json(ws)["type"])

        replies = list(pool.map(session_info, range(CLIENTS)))
        answers = pool.map(lambda creds: server.request("GET", "/api/devices/", token=creds["token"]), logins)
        reads = [status for status, _ in answers]
    return [f"{reply} {status}" for reply, status in zip(replies, reads, strict=True)]


def peak_per_role(cluster: Cluster, settings: dict[str, str], directory: Path) -> tuple[Counter[str], list[str]]:
    manage(cluster.env, "ensure_demo_user")
    server = cluster.servers[0]
    with Sampler(cluster) as sampler:
        outcomes = burst(server)
        time.sleep(0.2)
    roles: Counter[str] = Counter()
    for name, count in sampler.peak.items():
        role = name.split(":")[1]
        roles[role] = max(roles[role], count)
    return roles, outcomes


def test_each_process_holds_at_most_its_pool_of_connections_through_a_burst(tmp_path: Path) -> None:
    settings = {
        "DATABASE_POOL_MAX_SIZE": str(POOL),
        "DATABASE_POOL_MIN_SIZE": "1",
        "DATABASE_POOL_TIMEOUT_S": "60",
        **SLOW_LOGINS,
    }
    with production_cluster(tmp_path, settings, servers=1, workers=1) as cluster:
        roles, outcomes = peak_per_role(cluster, settings, tmp_path)
    assert outcomes == ["session_info 200"] * CLIENTS  # waiting for a pooled connection, nobody failed
    assert set(roles) >= {"daphne", "simulator_worker"}, roles
    assert roles["daphne"] <= POOL and roles["simulator_worker"] <= POOL, roles


def test_without_the_pool_the_same_burst_opens_a_connection_per_thread(tmp_path: Path) -> None:
    # What the bound is for: persistent connections are per thread, and every HTTP request has one.
    with production_cluster(tmp_path, {"DATABASE_POOL_MAX_SIZE": "0", **SLOW_LOGINS}, servers=1, workers=0) as cluster:
        roles, outcomes = peak_per_role(cluster, {}, tmp_path)
    assert outcomes == ["session_info 200"] * CLIENTS
    assert roles["daphne"] > POOL, roles
