"""The `tradesim` command line (tools/python-client) as a user runs it, in subprocesses against
daphne: each command's output and exit code, --json for scripts, and `watch` redrawing a live
table in a terminal (a pseudo-terminal here)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.liveserver import ROOT, DaphneServer, free_port
from tests.support.servers import running_server

PASSWORD = "pw-for-tests-123"
CLIENT_SOURCE = ROOT / "tools" / "python-client" / "src"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("pycli"), MARKET_TICK_MS="200") as server:
        yield server


@pytest.fixture
def cli_env(server: DaphneServer, tmp_path: Path) -> dict[str, str]:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    server.issue_token(name, "--password", PASSWORD)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADESIM_", "PYTEST"))},
        "PYTHONPATH": str(CLIENT_SOURCE),
        "TRADESIM_HOME": str(tmp_path / "home"),
        "TRADESIM_SERVER": server.http,
        "TRADESIM_USER": name,
    }


def tradesim(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradesim", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def eventually(env: dict[str, str], *args: str, until: Any = None, within: float = 15) -> Any:
    """Run a --json command until it succeeds (and `until(answer)` holds): the simulator takes a
    moment to run and the market to fill."""
    deadline = time.monotonic() + within
    while True:
        result = tradesim(env, "--json", *args)
        if result.returncode == 0 and (until is None or until(json.loads(result.stdout))):
            return json.loads(result.stdout)
        assert time.monotonic() < deadline, (result.returncode, result.stdout, result.stderr)
        time.sleep(0.3)


def test_login_trade_and_inspect_with_exit_codes_and_json(cli_env: dict[str, str]) -> None:
    env, user = cli_env, cli_env["TRADESIM_USER"]
    assert tradesim(env, "account").returncode == 3  # not logged in
    assert tradesim(env, "login", user, "--password", "wrong").returncode == 3
    assert tradesim(env, "buy", "AAPL", "many").returncode == 2
    logged_in = tradesim(env, "login", user, "--password", PASSWORD)
    assert logged_in.returncode == 0 and f"username: {user}" in logged_in.stdout
    assert (Path(env["TRADESIM_HOME"]) / "credentials.json").stat().st_mode & 0o777 == 0o600

    started = json_of(tradesim(env, "--json", "start"))
    assert started["type"] == "simulator_started" and started["success"] is True
    again = tradesim(env, "--json", "start")
    assert again.returncode == 1 and json.loads(again.stderr)["code"] == "simulator_already_running"

    bought = eventually(env, "buy", "AAPL", "2")
    assert bought["type"] == "order_placed" and bought["order"]["side"] == "buy"
    resting = json_of(tradesim(env, "--json", "buy", "AAPL", "1", "--limit", "1"))["order"]
    assert resting["orderType"] == "limit" and resting["status"] == "new"
    orders = json_of(tradesim(env, "--json", "orders"))
    assert resting["orderId"] in {o["orderId"] for o in orders}
    canceled = json_of(tradesim(env, "--json", "cancel", resting["orderId"]))
    assert canceled["order"]["status"] == "canceled"
    plain_order = tradesim(env, "buy", "AAPL", "1", "--limit", "1")  # rests: far below the market
    assert plain_order.returncode == 0 and "order:\n  orderId: " in plain_order.stdout, plain_order.stderr
    plain_id = plain_order.stdout.split("orderId: ", 1)[1].split()[0]
    plain_cancel = tradesim(env, "cancel", plain_id)
    assert plain_cancel.returncode == 0 and "  status: canceled" in plain_cancel.stdout
    twice = tradesim(env, "cancel", resting["orderId"])
    assert twice.returncode == 1 and "order_not_cancelable" in twice.stderr

    # The exchange's other order types and classes, and replace.
    low = json_of(tradesim(env, "--json", "buy", "AAPL", "1", "--limit", "1", "--tif", "day"))["order"]
    assert (low["orderType"], low["timeInForce"]) == ("limit", "day")
    replaced = json_of(tradesim(env, "--json", "replace", low["orderId"], "--quantity", "3", "--limit", "2"))
    assert replaced["type"] == "order_replaced"
    assert (replaced["order"]["quantity"], replaced["order"]["limitPrice"]) == (3, 2)
    assert tradesim(env, "replace", low["orderId"]).returncode == 2  # nothing to change
    bracket = json_of(
        tradesim(env, "--json", "buy", "AAPL", "1", "--limit", "1", "--take-profit", "2", "--stop-loss", "0.5")
    )["order"]
    assert bracket["orderClass"] == "bracket"
    refused = tradesim(env, "--json", "buy", "AAPL", "1", "--limit", "1", "--take-profit", "0.5", "--stop-loss", "2")
    assert refused.returncode == 1 and json.loads(refused.stderr)["code"] == "invalid_bracket"
    for order in (low, bracket):
        assert tradesim(env, "cancel", order["orderId"]).returncode == 0

    positions = eventually(env, "positions", until=lambda rows: any(r["quantity"] == 2 for r in rows))
    assert [p["symbol"] for p in positions if p["quantity"] == 2] == ["AAPL"]
    account = json_of(tradesim(env, "--json", "account"))
    assert account["cash"] < account["startingCash"] and account["positionsValue"] > 0
    plain = tradesim(env, "positions")
    assert plain.returncode == 0 and "symbol=AAPL" in plain.stdout

    stopped = json_of(tradesim(env, "--json", "stop"))
    assert stopped["type"] == "simulator_stopped"
    assert tradesim(env, "stop").returncode == 1  # simulator_not_running
    assert tradesim(env, "logout").returncode == 0
    assert tradesim(env, "account").returncode == 3


def test_datasets_are_uploaded_listed_refused_with_the_bad_line_and_deleted(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env, user = cli_env, cli_env["TRADESIM_USER"]
    assert tradesim(env, "login", user, "--password", PASSWORD).returncode == 0
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    header = "timestamp,symbol,open,high,low,close,volume\n"
    good.write_text(header + "2026-01-05T14:30:00Z,AAPL,1,2,1,2,10\n2026-01-05T14:31:00Z,AAPL,2,3,2,3,20\n")
    bad.write_text(header + "2026-01-05T14:30:00Z,AAPL,1,2,3,2,10\n")

    stored = json_of(tradesim(env, "--json", "upload-dataset", str(good), "--name", "two minutes"))
    assert (stored["name"], stored["barCount"], stored["mine"]) == ("two minutes", 2, True)
    listed = tradesim(env, "datasets")
    assert (
        listed.returncode == 0 and f"id={stored['datasetId']}  name=two minutes  owner=yours  bars=2" in listed.stdout
    )
    refused = tradesim(env, "--json", "upload-dataset", str(bad), "--name", "broken")
    assert refused.returncode == 1
    error = json.loads(refused.stderr)
    assert (error["code"], error["details"][0]["field"]) == ("invalid_dataset", "line 2.high")
    assert tradesim(env, "delete-dataset", stored["datasetId"]).returncode == 0
    assert json_of(tradesim(env, "--json", "datasets")) == []
    assert tradesim(env, "delete-dataset", stored["datasetId"]).returncode == 1  # unknown_dataset


def test_risk_limits_are_shown_set_whole_refused_past_a_limit_and_cleared(cli_env: dict[str, str]) -> None:
    env, user = cli_env, cli_env["TRADESIM_USER"]
    assert tradesim(env, "login", user, "--password", PASSWORD).returncode == 0
    nothing = {
        "maxOrderValue": None,
        "maxPositionValue": None,
        "maxOpenOrders": None,
        "maxLeverage": None,
        "dailyLossLimit": None,
    }
    assert json_of(tradesim(env, "--json", "limits"))["limits"] == nothing

    shown = tradesim(env, "limits", "--max-order-value", "500", "--max-open-orders", "3")
    assert shown.returncode == 0 and "maxOrderValue: 500.0" in shown.stdout and "maxOpenOrders: 3" in shown.stdout
    assert json_of(tradesim(env, "--json", "start"))["type"] == "simulator_started"
    deadline = time.monotonic() + 15
    while True:  # the simulator takes a moment to run
        refused = tradesim(env, "--json", "buy", "MSFT", "10")
        code = json.loads(refused.stderr)["code"] if refused.returncode == 1 else None
        if code != "simulator_not_running" or time.monotonic() > deadline:
            break
    assert code == "order_value_limit"

    assert json_of(tradesim(env, "--json", "limits", "--clear"))["limits"] == nothing
    assert tradesim(env, "--json", "stop").returncode == 0


def test_accounts_are_opened_listed_traded_and_closed(cli_env: dict[str, str]) -> None:
    env, user = cli_env, cli_env["TRADESIM_USER"]
    assert tradesim(env, "login", user, "--password", PASSWORD).returncode == 0
    opened = json_of(tradesim(env, "--json", "open-account", "Swing", "--cash", "20000", "--profile", "ideal"))
    assert (opened["name"], opened["cash"], opened["profile"]) == ("Swing", 20_000, "ideal")
    swing = str(opened["accountId"])
    shown = tradesim(env, "accounts")
    assert shown.returncode == 0 and "Main" in shown.stdout and "Swing" in shown.stdout, shown.stdout

    assert json_of(tradesim(env, "--json", "start", "--account", swing))["type"] == "simulator_started"
    eventually(env, "buy", "MSFT", "1")
    eventually(env, "account", until=lambda account: account["name"] == "Swing" and account["cash"] < 20_000)
    taken = tradesim(env, "--json", "close-account", swing)
    assert taken.returncode == 1 and json.loads(taken.stderr)["code"] == "account_in_use"
    assert tradesim(env, "--json", "stop").returncode == 0

    reset = json_of(tradesim(env, "--json", "reset-account", "--account", swing))
    assert reset["startingCash"] == 20_000 and reset["cashBefore"] < 20_000
    assert json_of(tradesim(env, "--json", "update-account", swing, "--name", "Swing 2"))["name"] == "Swing 2"
    assert json_of(tradesim(env, "--json", "close-account", swing))["closedAt"] is not None
    listed = json_of(tradesim(env, "--json", "accounts", "--closed"))
    assert [(a["name"], a["closedAt"] is None) for a in listed] == [("Main", True), ("Swing 2", False)]
    unknown = tradesim(env, "--json", "close-account", "999999999")
    assert unknown.returncode == 1 and json.loads(unknown.stderr)["code"] == "unknown_account"


def test_an_unreachable_server_exits_with_4(cli_env: dict[str, str]) -> None:
    result = tradesim(cli_env, "--server", f"http://127.0.0.1:{free_port()}", "login", "x", "--password", "y")
    assert result.returncode == 4 and "tradesim:" in result.stderr


def test_watch_follows_the_market_live_in_a_terminal_and_as_json_lines(cli_env: dict[str, str]) -> None:
    env = cli_env
    assert tradesim(env, "login", env["TRADESIM_USER"], "--password", PASSWORD).returncode == 0
    assert tradesim(env, "start").returncode == 0
    eventually(env, "buy", "AAPL", "1")

    lines = tradesim(env, "--json", "watch", "AAPL", "--seconds", "2").stdout.splitlines()
    kinds = [json.loads(line)["type"] for line in lines]
    assert "exchange_data" in kinds and "exchange_data_status" in kinds

    primary, secondary = pty.openpty()
    watch = subprocess.Popen(
        [sys.executable, "-m", "tradesim", "watch", "--seconds", "3"], env=env, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    screen = b""
    placed: dict | None = None
    while watch.poll() is None or select.select([primary], [], [], 0.1)[0]:
        if placed is None and b"SYMBOL" in screen:
            # A command run meanwhile uses its own device: the watcher's connection is not replaced.
            placed = json_of(tradesim(env, "--json", "buy", "AAPL", "1", "--limit", "1"))["order"]
        if select.select([primary], [], [], 0.1)[0]:
            try:
                screen += os.read(primary, 65536)
            except OSError:
                break
    os.close(primary)
    frames = screen.decode(errors="replace").split("\x1b[H\x1b[J")
    assert watch.wait(5) == 0
    assert len(frames) > 3  # redrawn in place, several times a second
    last = frames[-1]
    assert "SYMBOL" in last and "AAPL" in last and "equity" in last and "simulator running" in last
    assert placed is not None and placed["orderId"][:12] in last  # the order placed meanwhile, live
    assert "RECENT" in last and "buy 1/1 AAPL at" in last and "filled" in last  # the market buy's fill
    tradesim(env, "stop")
