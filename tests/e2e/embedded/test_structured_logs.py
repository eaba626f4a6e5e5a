"""Production logs are JSON lines that carry the connection's ids and never a token."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.liveserver import DaphneServer, base_env, recv_json, request, send_json
from tests.support.servers import RELAXED_LOGIN_THROTTLE, migrated_database


def test_a_captured_run_is_json_with_connection_ids_and_no_token(tmp_path: Path) -> None:
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'logs.sqlite3'}",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        **RELAXED_LOGIN_THROTTLE,
    )
    migrated_database(tmp_path / "logs.sqlite3")
    # -v 0: daphne's own plain access log off, as docs/deployment.md's recipe runs it.
    server = DaphneServer(env=env, args=("-v", "0")).start(tmp_path)
    try:
        creds = server.login("demo", "demo-password")
        with server.connect(creds["token"], creds["deviceId"]) as ws:
            connected = recv_json(ws)
            send_json(ws, request("stop_simulator", creds["deviceId"], "req-42"))
            assert recv_json(ws)["code"] == "simulator_not_running"
        with contextlib.suppress(urllib.error.HTTPError):  # a 404 Django logs, with the URL
            urllib.request.urlopen(f"{server.http}/api/no-such-page/?token={creds['token']}", timeout=10)
        with server.connect(f"{creds['token']}x", creds["deviceId"]) as refused:  # a refused handshake is logged
            assert recv_json(refused)["code"] == "token_invalid"
    finally:
        server.stop()
    text = server.log()

    assert creds["token"] not in text and connected["sessionToken"] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    opened = next(line for line in lines if line["message"].startswith("connection opened"))
    assert opened["connectionId"] and opened["userId"] == int(connected["userId"])
    assert opened["deviceId"] == creds["deviceId"] and opened["sessionId"] == connected["sessionId"]
    error = next(line for line in lines if "simulator_not_running" in line["message"])
    assert error["requestId"] == "req-42" and error["connectionId"] == opened["connectionId"]
    closed = next(line for line in lines if line["message"].startswith("connection closed"))
    assert closed["deviceId"] == creds["deviceId"]
