"""Figures for the session core, measured over real sockets against daphne.

Usage: .venv/bin/python bench/session_core.py [--connections 50] [--seconds 5]

Starts the service the embedded way (SQLite, in-memory layer) in a subprocess, and,
in the same run, a bare `websockets` server answering the same heartbeat_ack as a
baseline. Prints a table and the ratio. Not part of the test suite: figures vary
with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.baselines import heartbeat_ack
from tests.support.liveserver import DaphneServer, base_env, heartbeat, manage


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def bare_server(port: int) -> websockets.Server:
    async def handler(ws: websockets.ServerConnection) -> None:
        async for frame in ws:
            message = json.loads(frame)
            await ws.send(heartbeat_ack(message))

    return await websockets.serve(handler, "127.0.0.1", port)


async def beat_loop(url: str, device_id: str, seconds: float, rtts: list[float]) -> int:
    count = 0
    async with websockets.connect(url, max_size=None) as ws:
        if "/ws/session/" in url:
            await ws.recv()  # connected
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await ws.send(json.dumps(heartbeat(device_id)))
            await ws.recv()
            rtts.append((time.perf_counter() - started) * 1000)
            count += 1
    return count


async def heartbeat_throughput(urls: list[tuple[str, str]], seconds: float) -> tuple[float, float, float]:
    rtts: list[float] = []
    started = time.perf_counter()
    counts = await asyncio.gather(*(beat_loop(url, device, seconds, rtts) for url, device in urls))
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, statistics.median(rtts), percentile(rtts, 0.99)


async def connect_times(server: DaphneServer, creds: list[dict]) -> list[float]:
    times = []
    for c in creds:
        started = time.perf_counter()
        async with websockets.connect(f"{server.ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}") as ws:
            await ws.recv()
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-"))
    env = base_env(
        DATABASE_URL=f"sqlite:///{directory / 'bench.sqlite3'}",
        LOGIN_THROTTLE_RATE="100000/min",
        LOGIN_USER_THROTTLE_RATE="100000/min",
        LOG_LEVEL="WARNING",
        # The load generator beats as fast as it can; the per-connection limit would refuse it.
        WS_RATE_LIMIT_PER_S="1000000",
        WS_RATE_LIMIT_BURST="1000000",
        # Every connection is another device of `demo`, all from 127.0.0.1.
        WS_MAX_CONNECTIONS_PER_USER="0",
        WS_MAX_CONNECTIONS_PER_IP="0",
    )
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_demo_user", "--no-admin")
    server = DaphneServer(env=env).start(directory)
    try:
        creds = [server.login("demo", "demo-password") for _ in range(args.connections)]
        connects = asyncio.run(connect_times(server, creds))
        service = asyncio.run(
            heartbeat_throughput(
                [
                    (f"{server.ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}", c["deviceId"])
                    for c in creds
                ],
                args.seconds,
            )
        )
    finally:
        server.stop()

    async def run_bare() -> tuple[float, float, float]:
        from tests.support.liveserver import free_port

        port = free_port()
        bare = await bare_server(port)
        try:
            return await heartbeat_throughput(
                [(f"ws://127.0.0.1:{port}/", f"bare-{i}") for i in range(args.connections)], args.seconds
            )
        finally:
            bare.close()
            await bare.wait_closed()

    # The stock-Channels baseline: the same heartbeat_ack from a plain AsyncJsonWebsocketConsumer under daphne.
    stock_server = DaphneServer(env=env, app="bench.stock_channels:application").start(directory)
    try:
        stock = asyncio.run(
            heartbeat_throughput(
                [(f"{stock_server.ws}/ws/stock/", f"stock-{i}") for i in range(args.connections)], args.seconds
            )
        )
    finally:
        stock_server.stop()

    # The baseline runs in this process, so it competes with the load generator; the service
    # runs in its own process. Both share the machine's cores with the client.
    bare = asyncio.run(run_bare())
    rows = [
        ("connect: p50 ms to `connected`", f"{statistics.median(connects):.1f}", "-"),
        ("connect: p99 ms to `connected`", f"{percentile(connects, 0.99):.1f}", "-"),
        (f"heartbeats/s at {args.connections} connections", f"{service[0]:.0f}", f"{stock[0]:.0f}", f"{bare[0]:.0f}"),
        ("heartbeat p50 ms", f"{service[1]:.2f}", f"{stock[1]:.2f}", f"{bare[1]:.2f}"),
        ("heartbeat p99 ms", f"{service[2]:.2f}", f"{stock[2]:.2f}", f"{bare[2]:.2f}"),
    ]
    print(f"{'figure':<42} {'service':>10} {'stock Channels':>15} {'bare websockets':>16}")
    for name, ours, stock_figure, theirs in [(*row[:2], "-", row[2]) if len(row) == 3 else row for row in rows]:
        print(f"{name:<42} {ours:>10} {stock_figure:>15} {theirs:>16}")
    print(f"throughput ratio service / stock Channels: {service[0] / stock[0]:.2f}")
    print(f"throughput ratio service / bare websockets: {service[0] / bare[0]:.2f}")


if __name__ == "__main__":
    main()
