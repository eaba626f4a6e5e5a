"""`scripts/serve`, exactly as a newcomer runs it (the README's first command), starts a process
whose start-up work runs: the demo trader logs in, sees the shipped dataset, starts a simulator,
and it runs in that very process (the embedded default: no worker to start); on SIGTERM every
connection is told `shutdown` with the close code 4012 before the process exits."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.support.liveserver import (
    ROOT,
    base_env,
    free_port,
    http_json,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
    wait_until,
)

pytestmark = [pytest.mark.timeout(180)]


class Served:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = base_env(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with log.open("wb") as output:
        process = subprocess.Popen([str(ROOT / "scripts" / "serve")], cwd=ROOT, env=env, stdout=output, stderr=output)
    try:

        def answering() -> bool:
            assert process.poll() is None, f"scripts/serve exited:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return True
            except OSError:
                return False

        # The script checks the install and migrates first.
        assert wait_until(answering, 120), f"scripts/serve did not answer:\n{log.read_text()}"
        yield Served(process, port, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_served_process_runs_simulators_itself_and_says_shutdown_on_sigterm(served: Served) -> None:
    status, login = http_json(
        served.http, "POST", "/api/auth/token/", {"username": "demo", "password": "demo-password"}
    )
    assert status == 201, login
    status, shipped = http_json(served.http, "GET", "/api/market/datasets/", token=login["token"])
    assert status == 200 and [(d["name"], d["shared"], d["barCount"]) for d in shipped] == [
        ("US indices, daily 1999-2018", True, 10_062)
    ]
    device_id = login["deviceId"]
    with connect(f"ws://127.0.0.1:{served.port}/ws/session/?token={login['token']}&deviceId={device_id}") as ws:
        assert recv_json(ws)["type"] == "connected"
        send_json(ws, request("start_simulator", device_id, "start"))
        started, _ = recv_until(ws, "simulator_started")
        running, _ = recv_until(ws, "simulator_status_update", timeout=60, simulatorStatus="running")
        served.process.send_signal(signal.SIGTERM)
        messages, code = recv_until_closed(ws, ignore=("exchange_data", "exchange_data_status"))

    assert started["success"] is True and running["simulatorId"] == started["simulatorId"]
    assert [m["type"] for m in messages][-1:] == ["shutdown"] and code == 4012
    assert served.process.wait(timeout=30) == 0
