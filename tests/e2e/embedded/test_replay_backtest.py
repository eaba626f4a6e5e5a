"""A backtest from code against daphne: the example bot (tools/python-client/examples/moving_average.py)
run by the Python client over a replay in lock-step gives identical fills and report run twice, and
at 1x the fills it gives at `max`; the report as JSON and as one HTML page; `tradesim backtest` and
`tradesim report` on the command line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tradesim import Client
from tradesim.backtest import BacktestResult, backtest, load_strategy

from market_app.http_messages import RunReport
from tests.support.liveserver import ROOT, DaphneServer, http_json
from tests.support.servers import running_server

EXAMPLE = ROOT / "tools" / "python-client" / "examples" / "moving_average.py"
CLIENT_SOURCE = ROOT / "tools" / "python-client" / "src"
PASSWORD = "pw-for-tests-123"


def wave_csv(symbol: str, bars: int, step: timedelta, start: datetime, period: float = 9) -> str:
    """Closes on a wave (`period` bars a radian) with a wiggle: the moving averages cross several times."""
    lines = ["timestamp,symbol,open,high,low,close,volume"]
    close = 100.0
    for i in range(bars):
        open_ = close
        close = round(100 + 12 * math.sin(i / period) + 1.5 * math.sin(i * 1.7), 2)
        high, low = max(open_, close) + 0.4, min(open_, close) - 0.4
        lines.append(f"{(start + i * step).isoformat()},{symbol},{open_},{high:.2f},{low:.2f},{close},5000")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("backtest")) as server:
        yield server


def user(server: DaphneServer) -> str:
    name = f"bt-{uuid.uuid4().hex[:8]}"
    server.issue_token(name, "--password", PASSWORD)
    return name


def fills_of(result: BacktestResult) -> list[tuple[Any, ...]]:
    return [(t["symbol"], t["openedAt"], t["closedAt"], round(t["pnl"], 6)) for t in result.report["trades"]]


async def run(server: DaphneServer, name: str, dataset: str, **options: Any) -> BacktestResult:
    async with Client(server.http, device_file=None, flow_control=False) as client:
        await client.connect(username=name, password=PASSWORD)
        return await backtest(client, load_strategy(EXAMPLE), dataset_id=dataset, seed=7, **options)


async def upload(server: DaphneServer, name: str, csv: str) -> str:
    async with Client(server.http, device_file=None) as client:
        await client.login(name, PASSWORD)
        return str((await client.upload_dataset("wave", csv))["datasetId"])


async def test_the_example_bot_gives_identical_fills_and_report_run_twice(server: DaphneServer) -> None:
    name = user(server)
    dataset = await upload(server, name, wave_csv("WAVE", 200, timedelta(days=1), datetime(2020, 1, 1, tzinfo=UTC)))

    first = await run(server, name, dataset)
    second = await run(server, name, dataset)

    assert first.bars == second.bars == 200
    assert len(first.placed) >= 4 and first.refused == []
    assert fills_of(first) == fills_of(second)
    assert first.report["figures"] == second.report["figures"]
    assert first.report["series"]["equity"] == second.report["series"]["equity"]
    report = RunReport.model_validate(first.report)
    assert report.bars == 200 and report.figures.periodsPerYear == 252
    assert report.figures.trades == len(report.trades) >= 2
    assert report.figures.sharpe is not None and report.figures.maxDrawdown <= 0


async def test_the_example_bot_at_1x_gives_the_fills_it_gives_at_max(server: DaphneServer) -> None:
    name = user(server)
    # 50 bars 100 ms apart: five seconds of market at 1x, the averages crossing three times.
    csv = wave_csv("FAST", 50, timedelta(milliseconds=100), datetime(2026, 3, 2, 14, 30, tzinfo=UTC), period=3)
    dataset = await upload(server, name, csv)

    at_max = await run(server, name, dataset, speed="max")
    real_time = await run(server, name, dataset, speed=1)

    assert at_max.bars == real_time.bars == 50
    assert fills_of(at_max) == fills_of(real_time) and fills_of(at_max)
    assert at_max.report["figures"] == real_time.report["figures"]


async def test_the_report_is_served_as_json_and_as_one_self_contained_page(server: DaphneServer) -> None:
    name = user(server)
    dataset = await upload(server, name, wave_csv("PAGE", 80, timedelta(days=1), datetime(2021, 1, 1, tzinfo=UTC)))
    result = await run(server, name, dataset)
    async with Client(server.http, device_file=None) as client:
        await client.login(name, PASSWORD)
        page = await client.report(result.simulator_id, html=True)
        token = client.token

    assert page.startswith("<!doctype html>") and "<svg" in page and 'id="monthly"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    status, unknown = http_json(server.http, "GET", f"/api/market/simulators/{uuid.uuid4()}/report/", token=token)
    assert status == 404 and unknown["code"] == "unknown_simulator"
    status, bad = http_json(
        server.http, "GET", f"/api/market/simulators/{result.simulator_id}/report/?benchmark=NOPE", token=token
    )
    assert status == 422 and bad["code"] == "unknown_benchmark"


def test_tradesim_backtest_and_report_on_the_command_line(server: DaphneServer, tmp_path: Path) -> None:
    name = user(server)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADESIM_", "PYTEST"))},
        "PYTHONPATH": str(CLIENT_SOURCE),
        "TRADESIM_HOME": str(tmp_path / "home"),
        "TRADESIM_SERVER": server.http,
        "TRADESIM_USER": name,
        "TRADESIM_PASSWORD": PASSWORD,
    }

    def tradesim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradesim", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert tradesim("login", name).returncode == 0
    bars = tmp_path / "bars.csv"
    bars.write_text(wave_csv("CLI", 120, timedelta(days=1), datetime(2019, 1, 1, tzinfo=UTC)))
    stored = json.loads(tradesim("--json", "upload-dataset", str(bars), "--name", "cli").stdout)
    page = tmp_path / "report.html"
    ran = tradesim(
        "--json",
        "backtest",
        str(EXAMPLE),
        "--dataset",
        stored["datasetId"],
        "--from",
        "2019-02-01",
        "--html",
        str(page),
    )
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    shown = tradesim("report", answer["simulatorId"])

    assert answer["bars"] == answer["report"]["bars"] == 120 - 31
    assert answer["report"]["start"] == int(datetime(2019, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert page.read_text().startswith("<!doctype html>")
    assert shown.returncode == 0 and "sharpe:" in shown.stdout and "maxDrawdown:" in shown.stdout
    refused = tradesim("backtest", str(EXAMPLE), "--dataset", "999999")
    assert refused.returncode == 1 and "unknown_dataset" in refused.stderr
