"""How far and how fast one market tick travels: tick-to-client latency and the number of
connections each tick reached.

Usage: .venv/bin/python bench/market_fanout.py [--connections 200 1000] [--seconds 10] [--tick-ms 100]
       [--production]

Starts the service the embedded way (SQLite, in-memory layer, the feed and the
simulators in the one daphne process) or, with --production, PostgreSQL + Redis with
one daphne process and one simulator worker. Creates N users with a running simulator,
each with one socket (the load generator runs in this process, on the same machine),
and measures for each `exchange_data` the time from the tick's `timestamp` (set by the
producer when it publishes) to its arrival, and how many sockets got each tick. Writes
bench/results/market_fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.liveserver import DaphneServer, WorkerProcess, base_env, manage

CREATE_TRADERS = """
import json
from django.contrib.auth import get_user_model
from sessions_app.services import token_issue
users = get_user_model()
out = []
for n in range({count}):
    user = users.objects.create_user(username=f"fan{{n}}-{tag}")
    issued = token_issue(user=user, device_id=None)
    out.append({{"token": issued.token, "deviceId": issued.device.device_id}})
print(json.dumps(out))
"""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def trader(
    url: str, device_id: str, gate: asyncio.Semaphore, ready: asyncio.Event, stop: asyncio.Event, sink: list
) -> None:
    async with gate:  # a connect storm is another benchmark: here they open a few dozen at a time
        ws = await websockets.connect(url, max_size=None, open_timeout=60)
        await ws.recv()  # connected
        await ws.send(json.dumps({"type": "start_simulator", "requestId": "s", "timestamp": 0, "deviceId": device_id}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "exchange_data":
                break
            if message["type"] == "error":
                raise RuntimeError(f"start_simulator failed: {message}")
    ready.set()
    async with ws:
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            received = time.time() * 1000
            if frame.startswith('{"type":"exchange_data",'):
                message = json.loads(frame)
                sink.append((message["seq"], received - message["timestamp"]))


async def measure(server: DaphneServer, creds: list[dict], seconds: float) -> dict:
    sink: list[tuple[int, float]] = []
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in creds]
    gate = asyncio.Semaphore(8)
    tasks = [
        asyncio.create_task(
            trader(
                f"{server.ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}",
                c["deviceId"],
                gate,
                r,
                stop,
                sink,
            )
        )
        for c, r in zip(creds, readies, strict=True)
    ]
    deadline = time.monotonic() + 600
    while not all(r.is_set() for r in readies):
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {sum(r.is_set() for r in readies)} of {len(readies)} traders got ticks")
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    sink.clear()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    samples = list(sink)
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    per_tick = Counter(seq for seq, _ in samples)
    full_ticks = sorted(per_tick)[1:-1] or sorted(per_tick)  # the edges were cut by the window
    latencies = [latency for _, latency in samples]
    return {
        "connections": len(creds),
        "deliveriesPerSecond": round(len(samples) / elapsed),
        "latencyP50Ms": round(statistics.median(latencies), 2),
        "latencyP99Ms": round(percentile(latencies, 0.99), 2),
        "ticks": len(per_tick),
        "reachedPerTickMin": min(per_tick[s] for s in full_ticks),
        "reachedPerTickMedian": statistics.median(per_tick[s] for s in full_ticks),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument("--production", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="fanout-"))
    results = []
    for count in args.connections:
        overrides = {
            "MARKET_TICK_MS": str(args.tick_ms),
            "SIMULATOR_WORKER_CAPACITY": str(count + 10),
            "LOG_LEVEL": "WARNING",
            "WS_HEARTBEAT_TIMEOUT_MS": "600000",
            "WS_HEARTBEAT_INTERVAL_MS": "300000",
            "WS_MAX_CONNECTIONS_PER_IP": "0",  # every trader connects from 127.0.0.1
        }
        processes: list = []
        database = None
        if args.production:
            from tests.support.production import fresh_postgres_database, production_env, require_services

            require_services()
            database = fresh_postgres_database()
            env = base_env(**production_env(database.__enter__()), **overrides, CHANNEL_LAYER_CAPACITY="5000")
        else:
            env = base_env(DATABASE_URL=f"sqlite:///{directory / f'fanout-{count}.sqlite3'}", **overrides)
        try:
            manage(env, "migrate", "--noinput")
            creds = json.loads(
                manage(env, "shell", "-c", CREATE_TRADERS.format(count=count, tag=count)).strip().splitlines()[-1]
            )
            server = DaphneServer(env=env).start(directory)
            processes.append(server)
            if args.production:
                processes.append(WorkerProcess(env=env).start(directory))
            result = asyncio.run(measure(server, creds, args.seconds))
            result["mode"] = "production" if args.production else "embedded"
            results.append(result)
        finally:
            for process in processes:
                process.stop()
            if database is not None:
                database.__exit__(None, None, None)

    print(f"\nticks every {args.tick_ms} ms, one daphne process, load generator on the same machine")
    print(f"{'connections':>12}{'deliveries/s':>14}{'p50 ms':>9}{'p99 ms':>9}{'reached/tick':>14}")
    for r in results:
        reached = f"{r['reachedPerTickMin']}-{r['reachedPerTickMedian']:.0f}"
        print(
            f"{r['connections']:>12}{r['deliveriesPerSecond']:>14}{r['latencyP50Ms']:>9}{r['latencyP99Ms']:>9}"
            f"{reached:>14}"
        )
    out = Path(__file__).parent / "results" / "market_fanout.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"tickMs": args.tick_ms, "results": results}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
