"""What a trader's own market costs (docs/replay.md): a replay at `max`, a lock-step backtest, and many
replays at once on one worker, against backtesting.py running the same strategy on the same bars.

Usage: .venv/bin/python bench/replay.py [--scenarios max,lockstep,many] [--simulators 200] [--speed 10]
       [--seconds 20] [--database sqlite|postgres]

One daphne process in the embedded layout (simulators in the server process; SQLite unless
`--database postgres`, the local `test` database), the shipped dataset (S&P 500 and NASDAQ daily bars,
1999-2018, 5,031 bar times) imported as an operator's:

- **max**: one replay of SPX and IXIC played at `max` without a lock-step client, with 40 resting GTC
  limit orders the path crosses (each fills once: matching on every bar, 40 fills written). Bars a
  second = bar times / (the `clock_update` saying `finished` - the one saying it plays).
- **lockstep**: the example bot (tools/python-client/examples/moving_average.py) through the Python
  client over the socket, every bar acknowledged: steps a second over the SPX replay; then a bot that
  never trades over the same bars (the bars' round trip alone), and from the two the time each order
  and the bar that fills it add.
- **backtesting.py**: the same moving-average crossover (10/30, 10 shares) on the same SPX bars, in
  this process (`Backtest.run`), as the same-run baseline: bars a second, and the ratios.
- **many**: `--simulators` users each replaying a dataset of one-second bars at `--speed` for
  `--seconds`: the server process's CPU seconds per simulator-bar (sampled from /proc) and the delay
  of each bar's push past its schedule (arrival minus the one before, minus the bar gap over the
  speed), p50 / p99 / max.

Writes bench/results/replay-*.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools" / "python-client" / "src"))
from bench.common import (
    ROOT,
    cpu_seconds,
    embedded_env,
    issue_clients,
    markdown_table,
    percentile,
    start_daphne,
    write_results,
)
from tests.support.liveserver import manage

SHIPPED = ROOT / "market_app" / "data" / "us-indices-daily.csv.gz"
EXAMPLE = ROOT / "tools" / "python-client" / "examples" / "moving_average.py"
FAST, SLOW, QUANTITY = 10, 30, 10


def request(kind: str, device_id: str, **fields: Any) -> str:
    return json.dumps(
        {
            "type": kind,
            "requestId": f"{kind}-{time.monotonic_ns()}",
            "timestamp": time.time() * 1000,
            "deviceId": device_id,
            **fields,
        }
    )


async def until(ws: Any, kind: str, **fields: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "error":
            raise RuntimeError(message)
        if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
            return message


def import_dataset(env: dict[str, str], path: Path, name: str) -> str:
    out = manage(env, "import_dataset", str(path), "--name", name, "--shared")
    return out.split()[1]


# --- max: one replay as fast as the worker goes ------------------------------------------------------


async def resting_limits(ws: Any, device: str, symbol: str, side: str, prices: list[float]) -> None:
    """One GTC limit order of 1 at each price, each answered before the next."""
    for price in prices:
        ticket = {"symbol": symbol, "side": side, "orderType": "limit", "quantity": 1, "timeInForce": "gtc"}
        await ws.send(request("place_order", device, limitPrice=price, **ticket))
        await until(ws, "order_placed")


async def replay_at_max(ws_url: str, client: dict[str, Any], dataset: str) -> dict[str, Any]:
    device = client["deviceId"]
    async with websockets.connect(
        f"{ws_url}/ws/session/?token={client['token']}&deviceId={device}", max_size=None
    ) as ws:
        await until(ws, "connected")
        market = {"source": "replay", "datasetId": dataset, "speed": "max", "paused": True, "seed": 1}
        await ws.send(request("start_simulator", device, profile="realistic", market=market))
        await until(ws, "simulator_status_update", simulatorStatus="running")
        await until(ws, "clock_update")
        # Resting limit orders the replay crosses: each fills once, on the bar the path reaches it.
        await resting_limits(ws, device, "SPX", "buy", [700 + level * 20 for level in range(20)])
        await ws.send(request("place_order", device, symbol="IXIC", side="buy", orderType="market", quantity=20))
        await until(ws, "order_placed")
        await ws.send(request("step_clock", device, bars=1))  # the market buy fills
        await until(ws, "clock_update")
        await resting_limits(ws, device, "IXIC", "sell", [3000 + level * 200 for level in range(20)])
        await ws.send(request("set_clock", device, paused=False))
        started = await until(ws, "clock_update")
        begun = time.perf_counter()
        while True:
            update = await until(ws, "clock_update")
            if update["clock"]["finished"]:
                break
        took = time.perf_counter() - begun
        bars = update["clock"]["bar"] - started["clock"]["bar"]
        await ws.send(request("request_exchange_data", device))
        snapshot = await until(ws, "exchange_data_status")
        filled = sum(1 for o in snapshot["userOrders"].values() if o["status"] == "filled")
        await ws.send(request("stop_simulator", device))
        return {"bars": bars, "seconds": round(took, 3), "barsPerS": round(bars / took), "ordersFilled": filled}


# --- lockstep: the example bot through the Python client ------------------------------------------------


async def lockstep(http: str, username: str, password: str, dataset: str) -> dict[str, Any]:
    """The example bot, then a bot that never trades over the same bars: the difference is what the
    orders cost (each order and the bar that fills it), the second run the bars' round trip alone."""
    from tradesim import Client
    from tradesim.backtest import backtest, load_strategy

    def no_orders(bar: Any, broker: Any) -> None:
        return None

    timed = {}
    async with Client(http, device_file=None, flow_control=False) as client:
        await client.connect(username=username, password=password)
        for name, on_bar in (("bot", load_strategy(EXAMPLE)), ("idle", no_orders)):
            begun = time.perf_counter()
            result = await backtest(client, on_bar, dataset_id=dataset, symbols=["SPX"], seed=1)
            timed[name] = (result, time.perf_counter() - begun)
    (bot, took), (idle, idle_took) = timed["bot"], timed["idle"]
    orders = len(bot.placed)
    return {
        "bars": bot.bars,
        "seconds": round(took, 3),
        "stepsPerS": round(bot.bars / took),
        "trades": bot.report["figures"]["trades"],
        "totalReturn": round(bot.report["figures"]["totalReturn"], 6),
        "orders": orders,
        "idleStepsPerS": round(idle.bars / idle_took),
        "msPerOrder": round((took - idle_took * bot.bars / idle.bars) / orders * 1000, 1) if orders else None,
    }


def backtesting_py() -> dict[str, Any]:
    """The same crossover in backtesting.py on the same SPX bars."""
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    with gzip.open(SHIPPED, "rt") as shipped:
        rows = [line.split(",") for line in shipped.read().splitlines()[1:]]
    spx = [r for r in rows if r[1] == "SPX"]
    frame = pd.DataFrame(
        {
            "Open": [float(r[2]) for r in spx],
            "High": [float(r[3]) for r in spx],
            "Low": [float(r[4]) for r in spx],
            "Close": [float(r[5]) for r in spx],
            "Volume": [float(r[6]) for r in spx],
        },
        index=pd.to_datetime([r[0] for r in spx]),
    )

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean()

    class Crossover(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=QUANTITY)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    test = Backtest(frame, Crossover, cash=100_000, commission=0.0, finalize_trades=True)
    begun = time.perf_counter()
    stats = test.run()
    took = time.perf_counter() - begun
    return {
        "bars": len(frame),
        "seconds": round(took, 3),
        "barsPerS": round(len(frame) / took),
        "trades": int(stats["# Trades"]),
    }


# --- many: replays at once on one worker ---------------------------------------------------------------


def second_bars(path: Path, seconds: int) -> None:
    start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    lines = ["timestamp,symbol,open,high,low,close,volume"]
    price = 100.0
    for i in range(seconds):
        nxt = round(price * (1 + (0.001 if i % 7 < 4 else -0.0012)), 2)
        lines.append(
            f"{(start + timedelta(seconds=i)).isoformat()},SEC,{price},{max(price, nxt) + 0.02},"
            f"{min(price, nxt) - 0.02},{nxt},1000"
        )
        price = nxt
    path.write_text("\n".join(lines) + "\n")


async def one_of_many(
    ws_url: str,
    client: dict[str, Any],
    dataset: str,
    speed: float,
    seconds: float,
    arrivals: list[float],
    gaps: list[float],
) -> int:
    device = client["deviceId"]
    async with websockets.connect(
        f"{ws_url}/ws/session/?token={client['token']}&deviceId={device}", max_size=None
    ) as ws:
        await until(ws, "connected")
        market = {"source": "replay", "datasetId": dataset, "speed": speed, "paused": False, "seed": 1}
        await ws.send(request("start_simulator", device, profile="realistic", market=market))
        await ws.send(request("subscribe_market", device))
        before: tuple[float, int] | None = None
        bars = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            if message["type"] != "exchange_data":
                continue
            now = time.monotonic()
            if before is not None:
                expected = (message["timestamp"] - before[1]) / 1000 / speed
                gaps.append(max(0.0, (now - before[0]) - expected) * 1000)
            before = (now, message["timestamp"])
            bars += 1
        arrivals.append(bars)
        await ws.send(request("stop_simulator", device))
        return bars


async def many(
    ws_url: str, clients: list[dict[str, Any]], dataset: str, speed: float, seconds: float, pid: int
) -> dict[str, Any]:
    arrivals: list[float] = []
    gaps: list[float] = []
    cpu_before = cpu_seconds(pid)
    begun = time.perf_counter()
    played = await asyncio.gather(*(one_of_many(ws_url, c, dataset, speed, seconds, arrivals, gaps) for c in clients))
    took = time.perf_counter() - begun
    cpu = cpu_seconds(pid) - cpu_before
    bars = sum(played)
    return {
        "simulators": len(clients),
        "speed": speed,
        "seconds": round(took, 2),
        "bars": bars,
        "barsPerS": round(bars / took),
        "cpuSeconds": round(cpu, 2),
        "cpuMsPerSimulatorBar": round(cpu / bars * 1000, 4) if bars else None,
        "pushDelayMs": {
            "p50": round(percentile(gaps, 0.5), 1),
            "p99": round(percentile(gaps, 0.99), 1),
            "max": round(max(gaps, default=0.0), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="max,lockstep,many")
    parser.add_argument("--simulators", type=int, default=200)
    parser.add_argument("--speed", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    scenarios = set(args.scenarios.split(","))
    results: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        directory = Path(tmp)
        overrides = {"SIMULATOR_LEASE_RENEW_MS": "1000"}
        if args.database == "postgres":
            overrides["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"
        env = embedded_env(directory, "replay", **overrides)
        manage(env, "migrate", "--noinput")
        shipped = import_dataset(env, SHIPPED, "us indices")
        seconds_file = directory / "seconds.csv"
        second_bars(seconds_file, 3_600)
        per_second = import_dataset(env, seconds_file, "seconds")
        clients = issue_clients(env, max(args.simulators, 2), tag="replay", per_user=1, password="bench-password")
        server = start_daphne(env, directory)
        try:
            if "max" in scenarios:
                results["max"] = asyncio.run(replay_at_max(server.ws, clients[0], shipped))
            if "lockstep" in scenarios:
                results["lockstep"] = asyncio.run(lockstep(server.http, "replay-login", "bench-password", shipped))
                results["backtesting.py"] = backtesting_py()
            if "many" in scenarios:
                results["many"] = asyncio.run(
                    many(
                        server.ws, clients[: args.simulators], per_second, args.speed, args.seconds, server.process.pid
                    )
                )
        finally:
            server.stop()
    rows = []
    if "max" in results:
        rows.append(
            [
                "one replay at max (no lock-step)",
                f"{results['max']['barsPerS']} bars/s",
                f"{results['max']['bars']} bars, {results['max']['ordersFilled']} fills",
            ]
        )
    if "lockstep" in results:
        ours, theirs = results["lockstep"], results["backtesting.py"]
        rows.append(
            [
                "lock-step, the Python client",
                f"{ours['stepsPerS']} steps/s",
                f"{ours['bars']} bars, {ours['trades']} trades",
            ]
        )
        rows.append(
            [
                "lock-step, a bot that never trades (the bars' round trip)",
                f"{ours['idleStepsPerS']} steps/s",
                f"each of the {ours['orders']} orders with its fill: {ours['msPerOrder']} ms more",
            ]
        )
        rows.append(
            ["backtesting.py, same strategy and bars", f"{theirs['barsPerS']} bars/s", f"{theirs['trades']} trades"]
        )
        rows.append(["ratio lock-step / backtesting.py", f"{ours['stepsPerS'] / theirs['barsPerS']:.3f}", ""])
        if "max" in results:
            rows.append(["ratio max / backtesting.py", f"{results['max']['barsPerS'] / theirs['barsPerS']:.3f}", ""])
    if "many" in results:
        m = results["many"]
        delay = m["pushDelayMs"]
        rows.append(
            [
                f"{m['simulators']} replays at {m['speed']:g}x",
                f"{m['cpuMsPerSimulatorBar']} CPU ms per simulator-bar",
                f"push delay p50 {delay['p50']} / p99 {delay['p99']} / max {delay['max']} ms, {m['barsPerS']} bars/s",
            ]
        )
    print(markdown_table(["scenario", "figure", "detail"], rows))
    print(f"written {write_results('replay', results)}")


if __name__ == "__main__":
    main()
