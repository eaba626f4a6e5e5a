"""The benchmark suite (issue 7): the service started the way production does, driven over real
sockets from a separate load-generator process, side by side with two baselines in the same run.

Usage:
  .venv/bin/python bench/suite.py [--scenarios connect,heartbeat,fanout,memory,production] [--quick]
  .venv/bin/python bench/suite.py --scenarios heartbeat --heartbeat-sizes 50 --py-spy   # where the time goes

Scenarios (sizes are options; --quick shrinks everything to a smoke run of a minute or two):
  connect     N clients connect at once (tokens issued beforehand; a sample also logs in over HTTP):
              connections/s and p50/p99 ms to `connected`
  heartbeat   closed-loop heartbeats at 1, 50, 500 and 2,000 connections: round trips/s, p50/p99 ms
  fanout      100, 1,000 and 5,000 connections following the market at 10 ticks/s: deliveries/s,
              p50/p99 tick-to-client ms, ticks missed or stale; plus a saturation run (50 ticks/s)
  memory      server RSS per idle connection at 2,000 and 5,000 connections
  production  PostgreSQL + Redis + simulator worker: the above on one and on two daphne processes
  writes      bench/write_rate.py: PostgreSQL writes by table and Redis commands by name per 1,000
              connected traders per second, idle and trading (counts, not timings)
  matching    bench/matching.py: 1,000 simulators with open orders of every type on the eight
              instruments matched per tick with books on: ms per tick, per simulator, against the
              matcher of before (in process, no server; the fills' database writes not included)
  capacity    idle traders beating every 25 s, dialing from one loopback address per generator
              process: 5,000, 10,000 and 19,000 on one daphne process (embedded), then 60,000 on
              four (PostgreSQL, Redis, a simulator worker): RSS, CPU and heartbeat p50/p99 at each
              step (--capacity-sizes, --capacity-fleet 60000x4, --capacity-seconds)

Baselines, measured in the same invocation on the same machine:
  bare websockets  bench/baselines.py: a minimal `websockets` server answering the same heartbeat_ack
                   (and broadcasting ticks with websockets.broadcast), in a process of its own
  stock Channels   bench/stock_channels.py under daphne: AsyncJsonWebsocketConsumer, stock dispatch,
                   one group per connection; its fan-out is a `group_send` per tick through
                   channels-redis from a publisher process (bench/baselines.py publish)

Every daphne runs with the production command line (deploy/Procfile). The embedded service is
the default deployment (SQLite, in-memory layer, feed and simulators inside the daphne process).
The service's per-connection rate limit is raised (the generator beats as fast as it can), and
heartbeat timeouts lengthened (idle sockets); nothing else is changed.

Prints markdown tables with ratio columns and a targets table; writes
bench/results/suite-<timestamp>.json. Needs PostgreSQL and Redis for `fanout` (the stock
baseline's channels-redis) and `production` (TEST_POSTGRES_URL / TEST_REDIS_URL as in the tests).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    PRODUCTION_DAPHNE_ARGS,
    RESULTS_DIR,
    ROOT,
    SERVICE_BENCH_SETTINGS,
    Generator,
    cpu_seconds,
    embedded_env,
    git_state,
    issue_clients,
    load_average,
    markdown_table,
    raise_nofile_limit,
    rss_kb,
    run_generators,
    scrape_metric,
    split,
    start_daphne,
    summary,
    write_results,
)
from tests.support.liveserver import (
    DaphneServer,
    base_env,
    free_port,
    manage,
    recv_json,
    recv_until,
    request,
    send_json,
)

PASSWORD = "bench-password-1"
SCENARIOS = ("connect", "heartbeat", "fanout", "memory", "production", "restart", "writes", "matching", "capacity")


# --- the systems under test ---------------------------------------------------------------


@dataclass
class BaselineProcess:
    """A bench/baselines.py process (bare server or stock publisher)."""

    args: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    process: subprocess.Popen | None = None
    port: int = 0

    def start(self) -> BaselineProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("baselines.py")), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"baseline {self.args} did not start: {line!r}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bare_server(tick_ms: int = 0) -> BaselineProcess:
    port = free_port()
    server = BaselineProcess(["bare", str(port), "--tick-ms", str(tick_ms)]).start()
    server.port = port
    return server


# The systems whose handshake checks a token: where their sockets open, with the token (and device).
AUTHENTICATED_PATHS = {
    "service": "/ws/session/?token={token}&deviceId={deviceId}",
    "stock-auth": "/ws/stock-auth/?token={token}",
}


@dataclass
class System:
    """What the load generator connects to: one or more processes of the service or a baseline."""

    kind: str  # service | stock | stock-auth | bare
    bases: list[str]  # ws://host:port of each process
    pids: list[int]
    creds: list[dict] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # the service's http bases, for /metrics

    def specs(self, count: int, offset: int = 0) -> list[dict]:
        """`count` connections; `offset` skips issued tokens (a round of fresh devices)."""
        if self.kind in AUTHENTICATED_PATHS:
            # One issued token (and device) per connection: the service allows one connection per device.
            if offset + count > len(self.creds):
                raise ValueError(f"{offset + count} connections need as many tokens; {len(self.creds)} issued")
            query = AUTHENTICATED_PATHS[self.kind]
            return [
                {
                    "url": f"{self.bases[i % len(self.bases)]}{query.format(**c)}",
                    "deviceId": c["deviceId"],
                    "expect": "connected",
                }
                for i, c in enumerate(self.creds[offset : offset + count])
            ]
        path = "/ws/stock/" if self.kind == "stock" else "/"
        return [
            {"url": f"{self.bases[i % len(self.bases)]}{path}", "deviceId": f"{self.kind}-{i}", "expect": None}
            for i in range(count)
        ]

    def rss_kb(self) -> int:
        return sum(rss_kb(p) for p in self.pids)


def service_system(servers: list[DaphneServer], creds: list[dict]) -> System:
    return System(
        "service",
        [s.ws for s in servers],
        [s.process.pid for s in servers],
        creds,
        [s.http for s in servers],
    )


def daphne_system(kind: str, servers: list[DaphneServer]) -> System:
    return System(kind, [s.ws for s in servers], [s.process.pid for s in servers])


def bare_system(servers: list[BaselineProcess]) -> System:
    return System("bare", [f"ws://127.0.0.1:{s.port}" for s in servers], [s.pid for s in servers])


# --- measurements -------------------------------------------------------------------------


def generator_jobs(kind: str, specs: list[dict], generators: int, **job: Any) -> list[dict]:
    return [{"kind": kind, "conns": part, **job} for part in split(specs, max(1, min(generators, len(specs))))]


def measure_storm(system: System, count: int, concurrency: int, offset: int = 0) -> dict:
    (result,), info = run_generators(
        [{"kind": "storm", "conns": system.specs(count, offset), "concurrency": concurrency}],
        watch={"server": system.pids},
    )
    times = result["times"]
    return {
        "connections": len(times),
        "failed": len(result["failures"]),
        "firstFailures": result["failures"][:3],
        "connectionsPerSecond": round(len(times) / result["elapsed"], 1),
        "msToConnected": summary(times),
        "serverCpu": info["cpu"]["server"],
        # Steadier than the rate on a shared machine: what one handshake costs the server.
        "serverCpuMsPerConnection": round(1000 * info["cpuSeconds"]["server"] / len(times), 3) if times else None,
        "otherCpu": info["cpu"]["others"],
        "generatorCpu": round(result["generatorCpu"], 3),
    }


def measure_heartbeat(system: System, count: int, seconds: float, generators: int, profile: Any = None) -> dict:
    jobs = generator_jobs("heartbeat", system.specs(count), generators, seconds=seconds, warmup=1.0, concurrency=50)
    results, info = run_generators(jobs, watch={"server": system.pids}, between=profile)
    rtts = [r for result in results for r in result["rtts"]]
    trips = sum(result["roundTrips"] for result in results)
    unexpected = collections.Counter()
    for result in results:
        unexpected.update(result["unexpected"])
    return {
        "connections": count,
        "roundTripsPerSecond": round(trips / seconds),
        # Less sensitive to other work on a shared machine than the rate itself.
        "roundTripsPerServerCpuSecond": round(trips / info["cpuSeconds"]["server"])
        if info["cpuSeconds"].get("server")
        else None,
        "rttMs": summary(rtts),
        "serverCpu": info["cpu"]["server"],
        "otherCpu": info["cpu"]["others"],
        "generatorCpu": [round(r["generatorCpu"], 3) for r in results],
        "generators": len(results),
        "failedConnections": sum(r.get("failed", 0) for r in info["ready"]),
        "firstFailures": [f for r in info["ready"] for f in r.get("failures", [])][:3],
        "unexpectedFrames": dict(unexpected),
        "profile": info["between"],
    }


def measure_fanout(system: System, count: int, seconds: float, tick_ms: int, extra_pids: list[int] = ()) -> dict:
    conflated_before = sum(
        scrape_metric(http, "market_tick_deliveries_total", 'outcome="conflated"') for http in system.metrics
    )
    redis_pid = redis_server_pid()
    watch = {"server": system.pids, "all": [*system.pids, *extra_pids] + ([redis_pid] if redis_pid else [])}
    job = {
        "kind": "fanout",
        "conns": system.specs(count),
        "seconds": seconds,
        "warmup": 1.0,
        "concurrency": 20,
        "readyTimeout": 30,
    }
    (result,), info = run_generators([job], watch=watch)
    conflated = (
        sum(scrape_metric(http, "market_tick_deliveries_total", 'outcome="conflated"') for http in system.metrics)
        - conflated_before
    )
    deliveries = result["deliveries"]
    return {
        "connections": count,
        "tickMs": tick_ms,
        "offeredPerSecond": round(count * 1000 / tick_ms),
        "ticksPerSecond": round(result["ticks"] / seconds, 1),
        "deliveriesPerSecond": round(deliveries / seconds),
        "latencyMs": summary(result["latencies"]),
        "ticks": result["ticks"],
        "reachedPerTickMin": result["reachedMin"],
        "gaps": result["gaps"],
        "conflatedByServer": int(conflated) if system.metrics else None,
        "stale": result["stale"],
        "lagging": result["lagging"],
        "closedBefore": result["closedBefore"],
        "closedDuring": result["closedDuring"],
        "withoutTick": result["withoutTick"],
        "failedConnections": info["ready"][0].get("failed", 0),
        "serverCpu": info["cpu"]["server"],
        "cpuWithRedisAndPublisher": info["cpu"]["all"],
        "otherCpu": info["cpu"]["others"],
        "deliveriesPerServerCpuSecond": round(deliveries / info["cpuSeconds"]["server"])
        if info["cpuSeconds"]["server"] > 0
        else None,
        "generatorCpu": round(result["generatorCpu"], 3),
    }


def rss_baseline(system: System, warmup: int, offset: int = 0) -> int:
    """The servers' RSS after a few connections opened and closed, so that what every connection
    shares (imports, caches, the first database connection) is in the baseline."""
    run_generators([{"kind": "hold", "conns": system.specs(warmup, offset)}])
    time.sleep(1.5)
    return system.rss_kb()


def measure_memory(system: System, count: int, warmup: int = 20) -> dict:
    before = rss_baseline(system, warmup)
    sampled: dict[str, Any] = {}

    def sample(ready: list) -> dict:
        time.sleep(3)  # let every handshake's work (hooks, presence writes) finish
        sampled["after"] = system.rss_kb()
        sampled["open"] = sum(r["open"] for r in ready)
        sampled["failed"] = sum(r["failed"] for r in ready)
        return sampled

    run_generators([{"kind": "hold", "conns": system.specs(count), "concurrency": 100}], between=sample)
    opened = sampled["open"] or 1
    return {
        "connections": count,
        "open": sampled["open"],
        "failed": sampled["failed"],
        "rssBeforeKb": before,
        "rssAfterKb": sampled["after"],
        "kbPerConnection": round((sampled["after"] - before) / opened, 2),
        "processes": len(system.pids),
    }


CAPACITY_WARMUP = 20  # connections per server process opened and closed before its baseline RSS


def capacity_settings(beat_s: float) -> dict[str, str]:
    """Traders told to beat every `beat_s` (in `connected`), and closed after three silent
    intervals as a deployment would close them, so a trader the server drops shows."""
    return {"WS_HEARTBEAT_INTERVAL_MS": str(round(beat_s * 1000)), "WS_HEARTBEAT_TIMEOUT_MS": str(round(beat_s * 3000))}


def measure_capacity(
    system: System,
    count: int,
    *,
    offset: int,
    seconds: float,
    generators: int,
    in_flight: int,
    beat_s: float,
    connect_s: float,
    backing: list[int] = (),
) -> dict:
    """`count` idle traders on `system` (fresh devices from `offset`), from `generators` processes
    dialing from 127.0.0.2, .3, ...: the servers' RSS and CPU, heartbeat round trips over `seconds`;
    the CPU and RSS of the `backing` processes (a worker, Redis) apart."""
    warmup = CAPACITY_WARMUP * len(system.pids)
    before = rss_baseline(system, warmup, offset)
    backing_before = sum(rss_kb(pid) for pid in backing)
    cpu_before = sum(cpu_seconds(pid) for pid in system.pids)
    held: dict[str, Any] = {}

    def near_end() -> None:
        held.update(rssEndKb=system.rss_kb(), backingRssKb=sum(rss_kb(pid) for pid in backing))

    def settled(_: list) -> dict:
        time.sleep(3)  # let the last handshakes' work finish
        held["connectCpuS"] = sum(cpu_seconds(pid) for pid in system.pids) - cpu_before
        held["rssKb"] = system.rss_kb()
        # Again near the window's end, every socket still open: the figure reported.
        held["timer"] = threading.Timer(seconds * 0.9, near_end)
        held["timer"].start()
        return {}

    parts = split(system.specs(count, offset + warmup), max(1, min(generators, count)))
    jobs = [
        {
            "kind": "idle",
            "conns": part,
            "source": f"127.0.0.{2 + index}",
            "slot": index,
            "slots": len(parts),
            "beat_s": beat_s,
            "seconds": seconds,
            "concurrency": max(1, in_flight // len(parts)),
            "connectS": connect_s,
        }
        for index, part in enumerate(parts)
    ]
    watch = {"server": system.pids, "backing": backing}
    try:
        results, info = run_generators(jobs, watch=watch, between=settled, ready_timeout=connect_s + 300)
    finally:
        if "timer" in held:
            held["timer"].cancel()
    ready = info["ready"]
    opened = sum(r["open"] for r in ready)
    connect_s = max(r["connectSeconds"] for r in ready)
    rss = held.get("rssEndKb", held["rssKb"])
    closed: collections.Counter[str] = collections.Counter()
    unexpected: collections.Counter[str] = collections.Counter()
    for result in results:
        closed.update(result["closed"])
        unexpected.update(result["unexpected"])
    return {
        "connections": count,
        "processes": len(system.pids),
        "held": opened,
        "failed": sum(r["failed"] for r in ready),
        "notOpenInTime": sum(r["notOpenInTime"] for r in ready),
        "firstFailures": [f for r in ready for f in r["failures"]][:5],
        "rssBeforeKb": before,
        "rssHeldKb": held["rssKb"],
        "rssKb": rss,
        "kbPerConnection": round((rss - before) / max(opened, 1), 2),
        "serverCpu": info["cpu"]["server"],
        "backingCpu": info["cpu"]["backing"],
        "backingRssKb": {"before": backing_before, "held": held.get("backingRssKb")},
        # Everything else: PostgreSQL, and whatever else this machine runs.
        "otherCpu": round(max(0.0, info["cpu"]["others"] - info["cpu"]["backing"]), 3),
        "generatorCpu": round(sum(r["generatorCpu"] for r in results), 3),
        "heartbeatMs": summary([x for r in results for x in r["rtts"]]),
        "beatsInWindow": sum(r["sentInWindow"] for r in results),
        "unanswered": sum(r["unanswered"] for r in results),
        "overtaken": sum(r["overtaken"] for r in results),
        "closedByServer": dict(closed),
        "unexpectedFrames": dict(unexpected.most_common(5)),
        "connectSeconds": connect_s,
        "connectionsPerSecond": round(opened / connect_s, 1) if connect_s else None,
        # Each from its place among those in flight, not from the start of the step.
        "handshakeMs": summary([t for r in ready for t in r["handshakeMs"]]),
        "serverCpuMsPerConnection": round(1000 * held["connectCpuS"] / opened, 3) if opened else None,
        "generators": len(parts),
        "seconds": seconds,
    }


def redis_server_pid() -> int | None:
    try:
        import redis

        from tests.support.production import REDIS_URL

        pid = int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])
        os.stat(f"/proc/{pid}")
        return pid
    except Exception:
        return None


def login_sample(server: DaphneServer, username: str, count: int, threads: int = 4) -> dict:
    """HTTP logins (POST /api/auth/token/): each pays Django's password hash."""
    if count <= 0:
        return {}

    def one(_: int) -> float:
        started = time.perf_counter()
        server.login(username, PASSWORD)
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    return {"logins": count, "threads": threads, "loginsPerSecond": round(count / elapsed, 1), "ms": summary(times)}


def start_simulators(server: DaphneServer, creds: list[dict]) -> int:
    """One running simulator per user among `creds` (each user's first device starts it)."""
    firsts: dict[int, dict] = {}
    for c in creds:
        firsts.setdefault(c["user"], c)
    for c in firsts.values():
        ws = server.connect(c["token"], c["deviceId"])
        try:
            connected = recv_json(ws)
            if connected.get("simulatorStatus") == "running":
                continue  # still running from an earlier server on this database
            send_json(ws, request("start_simulator", c["deviceId"], "start"))
            recv_until(ws, "simulator_status_update", timeout=60, simulatorStatus="running")
        finally:
            ws.close()
    return len(firsts)


# --- py-spy ---------------------------------------------------------------------------------


def py_spy_profiler(pid: int, seconds: float, out: Path) -> Callable[[list], dict]:
    """A `between` hook: records the server with py-spy (in the background) for the window."""

    def start(_: list) -> dict:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
        process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        holder["process"] = process
        return {"output": str(out)}

    holder: dict[str, Any] = {}
    start.holder = holder  # type: ignore[attr-defined]
    return start


def summarize_profile(path: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.strip() for f in stack.split(";")][1:]  # the first frame is the process/thread
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: collections.Counter) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


# --- the suite ---------------------------------------------------------------------------


@dataclass
class Sizes:
    storm: int
    storm_concurrency: int
    storm_rounds: int
    login_sample: int
    heartbeat: list[int]
    heartbeat_seconds: float
    fanout: list[int]
    fanout_seconds: float
    saturation_size: int
    saturation_tick_ms: int
    memory: list[int]
    production_heartbeat: list[int]
    production_fanout: int
    production_memory: int
    restart: int
    restart_push_rate: int
    generators: int
    capacity: list[int]
    capacity_fleet: tuple[int, int]  # connections, processes
    capacity_seconds: float
    capacity_generators: int
    capacity_in_flight: int
    capacity_beat_s: float
    capacity_connect_s: float


def sizes_from(args: argparse.Namespace) -> Sizes:
    quick = args.quick
    return Sizes(
        storm=args.storm_size or (50 if quick else 1000),
        storm_concurrency=args.storm_concurrency,
        storm_rounds=args.storm_rounds or (1 if quick else 3),
        login_sample=args.login_sample if args.login_sample is not None else (4 if quick else 40),
        heartbeat=args.heartbeat_sizes or ([1, 20] if quick else [1, 50, 500, 2000]),
        heartbeat_seconds=args.seconds or (2.0 if quick else 5.0),
        fanout=args.fanout_sizes or ([20, 100] if quick else [100, 1000, 5000]),
        fanout_seconds=args.fanout_seconds or (3.0 if quick else 10.0),
        saturation_size=args.saturation_size or (100 if quick else 1000),
        saturation_tick_ms=args.saturation_tick_ms,
        memory=args.memory_sizes or ([200] if quick else [2000, 5000]),
        production_heartbeat=args.production_heartbeat_sizes or ([20] if quick else [50, 500]),
        production_fanout=args.production_fanout_size or (100 if quick else 1000),
        production_memory=args.production_memory_size or (200 if quick else 2000),
        restart=args.restart_clients or (200 if quick else 4000),
        restart_push_rate=args.restart_push_rate,
        generators=args.generators,
        capacity=args.capacity_sizes
        if args.capacity_sizes is not None  # an empty list: no one-process steps
        else ([500, 1000] if quick else [5000, 10000, 19000]),
        capacity_fleet=args.capacity_fleet or ((2000, 2) if quick else (60000, 4)),
        capacity_seconds=args.capacity_seconds or (25.0 if quick else 60.0),
        capacity_generators=args.capacity_generators,
        capacity_in_flight=args.capacity_in_flight,
        capacity_beat_s=args.capacity_beat_s,
        capacity_connect_s=args.capacity_connect_s,
    )


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = sizes_from(args)
        self.directory = Path(tempfile.mkdtemp(prefix="bench-suite-"))
        self.results: dict[str, Any] = {}
        self.tables: list[str] = []
        self.targets: list[dict] = []
        self.cleanup: list[Callable[[], None]] = []

    # -- plumbing

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    @contextlib.contextmanager
    def running(self, *processes: Any) -> Iterator[None]:
        try:
            yield
        finally:
            for process in processes:
                with contextlib.suppress(Exception):
                    process.stop()

    def table(self, title: str, headers: list[str], rows: list[list[Any]]) -> None:
        text = f"\n### {title}\n\n" + markdown_table(headers, rows)
        self.tables.append(text)
        print(text, flush=True)

    def target(self, name: str, measured: str, met: bool | None, note: str = "") -> None:
        self.targets.append({"target": name, "measured": measured, "met": met, "note": note})

    # -- the embedded service and its baselines

    def main_env(self) -> dict[str, str]:
        if not hasattr(self, "_main_env"):
            self._main_env = embedded_env(self.directory, "main")
            manage(self._main_env, "migrate", "--noinput")
            need = max(self.sizes.storm * self.sizes.storm_rounds, *self.sizes.heartbeat, *self.sizes.memory, 1) + 25
            self.log(f"issuing {need} device tokens (embedded)")
            self._main_creds = issue_clients(self._main_env, need, tag="main", password=PASSWORD)
        return self._main_env

    def stock_env(self, redis: bool = False, **extra: str) -> dict[str, str]:
        env = embedded_env(self.directory, "stock", **extra)
        if redis:
            from tests.support.production import REDIS_URL

            env.update(
                REDIS_URL=REDIS_URL,
                CHANNEL_LAYER_PREFIX=f"bench-stock-{secrets.token_hex(4)}",
                # channels-redis drops a group_send past a channel's capacity; give it room to show throughput.
                CHANNEL_LAYER_CAPACITY="100000",
            )
        return env

    def connect_and_heartbeat(self, scenarios: set[str]) -> None:
        env = self.main_env()
        stock_env = self.stock_env()
        manage(stock_env, "migrate", "--noinput")
        service = start_daphne(env, self.directory)
        stock = start_daphne(stock_env, self.directory, app="bench.stock_channels:application")
        bare = bare_server()
        floor = start_daphne(stock_env, self.directory, app="bench.baselines:daphne_floor")
        with self.running(service, stock, bare, floor):
            systems = {
                "service": service_system([service], self._main_creds),
                "stock": daphne_system("stock", [stock]),
                "bare": bare_system([bare]),
            }
            if "connect" in scenarios:
                # The fair peer: stock Channels whose connect looks its token up (tokens in its own database).
                tokens = self.sizes.storm * self.sizes.storm_rounds
                self.log(f"issuing {tokens} tokens (stock Channels with a token lookup)")
                stock_creds = issue_clients(stock_env, tokens, tag="stock")
                peer = System("stock-auth", [stock.ws], [stock.process.pid], stock_creds)
                self.connect_storm({**systems, "stock-auth": peer}, service)
            if "heartbeat" in scenarios:
                # Daphne's own ceiling: the same reply from a raw ASGI callable, no Django or Channels.
                self.heartbeat({**systems, "floor": daphne_system("floor", [floor])})

    def connect_storm(self, systems: dict[str, System], service: DaphneServer) -> None:
        n, conc, rounds = self.sizes.storm, self.sizes.storm_concurrency, self.sizes.storm_rounds
        self.log(f"connect storm: {n} clients, {conc} handshakes in flight, best of {rounds} interleaved rounds")
        out: dict[str, Any] = {}
        for round_ in range(rounds):
            for kind, system in systems.items():
                # Every round connects devices never seen before (first connects: a session is opened).
                run = measure_storm(system, n, conc, offset=round_ * n)
                out[kind] = best_of(out.get(kind), run, "connectionsPerSecond")
        out["login"] = login_sample(service, "main-login", self.sizes.login_sample)
        self.results["connect"] = out
        s, st, sa, b = out["service"], out["stock"], out["stock-auth"], out["bare"]
        self.table(
            f"Connect storm: {n} clients at once ({conc} handshakes in flight), embedded",
            [
                "figure",
                "service",
                "stock + token lookup",
                "stock Channels",
                "bare websockets",
                "service/(stock+token)",
                "service/stock",
                "service/bare",
            ],
            [
                [
                    "connections/s",
                    s["connectionsPerSecond"],
                    sa["connectionsPerSecond"],
                    st["connectionsPerSecond"],
                    b["connectionsPerSecond"],
                    ratio(s["connectionsPerSecond"], sa["connectionsPerSecond"]),
                    ratio(s["connectionsPerSecond"], st["connectionsPerSecond"]),
                    ratio(s["connectionsPerSecond"], b["connectionsPerSecond"]),
                ],
                [
                    "p50 ms to first message (stock, bare: to open)",
                    s["msToConnected"]["p50"],
                    sa["msToConnected"]["p50"],
                    st["msToConnected"]["p50"],
                    b["msToConnected"]["p50"],
                    "",
                    "",
                    "",
                ],
                [
                    "p99 ms to first message (stock, bare: to open)",
                    s["msToConnected"]["p99"],
                    sa["msToConnected"]["p99"],
                    st["msToConnected"]["p99"],
                    b["msToConnected"]["p99"],
                    "",
                    "",
                    "",
                ],
                ["failed", s["failed"], sa["failed"], st["failed"], b["failed"], "", "", ""],
                ["server CPU (cores)", s["serverCpu"], sa["serverCpu"], st["serverCpu"], b["serverCpu"], "", "", ""],
                [
                    "server CPU ms per connection",
                    s["serverCpuMsPerConnection"],
                    sa["serverCpuMsPerConnection"],
                    st["serverCpuMsPerConnection"],
                    b["serverCpuMsPerConnection"],
                    ratio(sa["serverCpuMsPerConnection"], s["serverCpuMsPerConnection"]),
                    ratio(st["serverCpuMsPerConnection"], s["serverCpuMsPerConnection"]),
                    ratio(b["serverCpuMsPerConnection"], s["serverCpuMsPerConnection"]),
                ],
                ["connections/s in each round", s["runs"], sa["runs"], st["runs"], b["runs"], "", "", ""],
            ],
        )
        peer_ratio = s["connectionsPerSecond"] / max(sa["connectionsPerSecond"], 1e-9)
        self.target(
            "connect storm (embedded) >= 1.5x stock Channels with a token lookup, p99 to first message <= its",
            f"{peer_ratio:.2f}x, p99 {s['msToConnected']['p99']} vs {sa['msToConnected']['p99']} ms",
            peer_ratio >= 1.5 and s["msToConnected"]["p99"] <= sa["msToConnected"]["p99"],
        )
        if out["login"]:
            login = out["login"]
            print(
                f"HTTP login sample (POST /api/auth/token/, {login['threads']} threads): {login['loginsPerSecond']}"
                f" tokens/s, p50 {login['ms']['p50']} ms, p99 {login['ms']['p99']} ms (a password hash each)"
            )

    def heartbeat(self, systems: dict[str, System]) -> None:
        out: dict[str, dict] = {}
        rows = []
        for n in self.sizes.heartbeat:
            self.log(f"heartbeat: {n} connections, {self.sizes.heartbeat_seconds} s each")
            per: dict[str, dict] = {}
            for attempt in range(self.args.repeat):
                for kind, system in systems.items():
                    profile = None
                    if self.args.py_spy and kind == "service" and n == 50 and attempt == 0:
                        out_path = self.directory / "py-spy-heartbeat-50.txt"
                        profile = py_spy_profiler(system.pids[0], self.sizes.heartbeat_seconds, out_path)
                    run = measure_heartbeat(system, n, self.sizes.heartbeat_seconds, self.sizes.generators, profile)
                    self.log(
                        f"  {kind}: {run['roundTripsPerSecond']}/s, p50/p99 {run['rttMs']['p50']}/{run['rttMs']['p99']}"
                        f" ms, server CPU {run['serverCpu']}, other CPU {run['otherCpu']}"
                        + (
                            f", {run['failedConnections']} failed: {run['firstFailures']}"
                            if run["failedConnections"]
                            else ""
                        )
                    )
                    if profile is not None:
                        run["profile"] = self.finish_profile(profile, out_path)
                    per[kind] = best_of(per.get(kind), run, "roundTripsPerSecond")
            out[str(n)] = per
            s, st, b = per["service"], per["stock"], per["bare"]
            fl = per.get("floor") or {"roundTripsPerSecond": 0}
            rows.append(
                [
                    n,
                    s["roundTripsPerSecond"],
                    st["roundTripsPerSecond"],
                    b["roundTripsPerSecond"],
                    fl["roundTripsPerSecond"],
                    ratio(s["roundTripsPerSecond"], st["roundTripsPerSecond"]),
                    ratio(s["roundTripsPerSecond"], b["roundTripsPerSecond"]),
                    ratio(s["roundTripsPerSecond"], fl["roundTripsPerSecond"]),
                    ratio(fl["roundTripsPerSecond"], b["roundTripsPerSecond"]),
                    f"{s['rttMs']['p50']} / {s['rttMs']['p99']}",
                    f"{st['rttMs']['p50']} / {st['rttMs']['p99']}",
                    f"{b['rttMs']['p50']} / {b['rttMs']['p99']}",
                    ratio(s["rttMs"]["p99"], b["rttMs"]["p99"]),
                    f"{s['serverCpu']} / {st['serverCpu']} / {b['serverCpu']}",
                    "/".join(str(x["roundTripsPerServerCpuSecond"]) for x in (s, st, b)),
                    "/".join(str(max(x["generatorCpu"])) for x in (s, st, b)),
                    "/".join(str(x["otherCpu"]) for x in (s, st, b)),
                ]
            )
        self.results["heartbeat"] = out
        self.table(
            "Heartbeat steady state (closed loop), embedded: round trips/s and p50 / p99 ms",
            [
                "conns",
                "service/s",
                "stock/s",
                "bare/s",
                "daphne floor/s",
                "svc/stock",
                "svc/bare",
                "svc/floor",
                "floor/bare",
                "service ms",
                "stock ms",
                "bare ms",
                "p99 svc/bare",
                "server CPU svc/stock/bare",
                "per server CPU-s svc/stock/bare",
                "generator CPU",
                "other CPU",
            ],
            rows,
        )
        self.print_profiles(out)
        if "50" in out:
            s, st, b = (out["50"][k] for k in ("service", "stock", "bare"))
            r_stock = s["roundTripsPerSecond"] / st["roundTripsPerSecond"]
            r_bare = s["roundTripsPerSecond"] / b["roundTripsPerSecond"]
            per_cpu = (s["roundTripsPerServerCpuSecond"] or 0) / (st["roundTripsPerServerCpuSecond"] or 1)
            self.target(
                "heartbeats/s at 50 connections >= 2.5x stock Channels",
                f"{r_stock:.2f}x (per server CPU-second {per_cpu:.2f}x)",
                r_stock >= 2.5,
            )
            floor = out["50"].get("floor", {}).get("roundTripsPerSecond") or 0
            self.target(
                "heartbeats/s at 50 connections >= 0.5x bare websockets",
                f"{r_bare:.2f}x (a raw ASGI app under daphne: {floor / b['roundTripsPerSecond']:.2f}x)",
                r_bare >= 0.5,
            )
        if "500" in out:
            s, b = out["500"]["service"], out["500"]["bare"]
            r = s["rttMs"]["p99"] / b["rttMs"]["p99"]
            self.target(
                "p99 heartbeat round trip at 500 connections <= 1.5x bare websockets",
                f"{s['rttMs']['p99']} vs {b['rttMs']['p99']} ms = {r:.2f}x",
                r <= 1.5,
            )

    def finish_profile(self, profile: Any, out_path: Path) -> dict:
        process = profile.holder.get("process")
        if process is None:
            return {"error": "py-spy did not start"}
        process.wait(60)
        if not out_path.exists():
            return {"error": (process.stderr.read() or b"").decode()[-500:]}
        summary_ = summarize_profile(out_path)
        kept = RESULTS_DIR / f"py-spy-heartbeat-50-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        RESULTS_DIR.mkdir(exist_ok=True)
        shutil.copy(out_path, kept)
        summary_["raw"] = str(kept)
        return summary_

    def print_profiles(self, out: dict) -> None:
        for n, per in out.items():
            profile = per["service"].get("profile")
            if not profile or "self" not in profile:
                continue
            print(f"\npy-spy, service at {n} connections ({profile['samples']} samples), top by own time:")
            for name, pct in profile["self"][:15]:
                print(f"  {pct:5.1f}%  {name}")
            print("top inclusive:")
            for name, pct in profile["inclusive"][:25]:
                print(f"  {pct:5.1f}%  {name}")

    # -- fan-out

    def fanout(self) -> None:
        from tests.support.production import require_services

        require_services()
        sizes = self.sizes
        biggest = max(*sizes.fanout, sizes.saturation_size)
        out: dict[str, Any] = {"rates": {}, "saturation": {}}
        self.results["fanout"] = out
        env = embedded_env(self.directory, "fanout")
        manage(env, "migrate", "--noinput")
        self.log(f"issuing {biggest} device tokens (fan-out, 500 devices per user)")
        creds = issue_clients(env, biggest, tag="fan", per_user=500)

        for tick_ms, label, counts in (
            (100, "rates", sizes.fanout),
            (sizes.saturation_tick_ms, "saturation", [sizes.saturation_size]),
        ):
            service = start_daphne({**env, "MARKET_TICK_MS": str(tick_ms)}, self.directory)
            stock_env = self.stock_env(redis=True)
            manage(stock_env, "migrate", "--noinput")
            stock = start_daphne(stock_env, self.directory, app="bench.stock_channels:application")
            publisher = BaselineProcess(["publish", "--tick-ms", str(tick_ms)], env=stock_env).start()
            bare = bare_server(tick_ms)
            with self.running(service, stock, publisher, bare):
                started = start_simulators(service, creds)
                self.log(f"fan-out at {1000 // tick_ms} ticks/s: {started} simulators running")
                systems = {
                    "service": service_system([service], creds),
                    "stock": daphne_system("stock", [stock]),
                    "bare": bare_system([bare]),
                }
                for n in counts:
                    self.log(f"fan-out: {n} connections at {1000 // tick_ms} ticks/s")
                    per: dict[str, dict] = {}
                    out[label][str(n)] = per
                    for kind, system in systems.items():
                        extra = [publisher.pid] if kind == "stock" else []
                        try:
                            run = measure_fanout(system, n, sizes.fanout_seconds, tick_ms, extra_pids=extra)
                        except Exception as error:
                            self.log(f"  {kind}: FAILED {type(error).__name__}: {error}")
                            per[kind] = Failed(error=f"{type(error).__name__}: {error}"[:500])
                            continue
                        self.log(
                            f"  {kind}: {run['deliveriesPerSecond']}/s, p50/p99 {run['latencyMs']['p50']}/"
                            f"{run['latencyMs']['p99']} ms, missed {run['gaps']}, stale {run['stale']}, lagging "
                            f"{run['lagging']}, closed {run['closedBefore']}+{run['closedDuring']}, "
                            f"server CPU {run['serverCpu']}, generator CPU {run['generatorCpu']}"
                        )
                        per[kind] = run
        rows = []
        for per_size in out.values():
            for n, per in per_size.items():
                s, st, b = (per.get(k, Failed()) for k in ("service", "stock", "bare"))
                rows.append(
                    [
                        f"{n} @ {1000 // s['tickMs'] if s else '?'}/s",
                        f"{s['offeredPerSecond']} ({s['ticksPerSecond']}/{st['ticksPerSecond']}/{b['ticksPerSecond']})",
                        s["deliveriesPerSecond"],
                        st["deliveriesPerSecond"],
                        b["deliveriesPerSecond"],
                        ratio(s["deliveriesPerSecond"], st["deliveriesPerSecond"]),
                        f"{s['latencyMs']['p50']} / {s['latencyMs']['p99']}",
                        f"{st['latencyMs']['p50']} / {st['latencyMs']['p99']}",
                        f"{b['latencyMs']['p50']} / {b['latencyMs']['p99']}",
                        f"{s['gaps']}/{s['conflatedByServer']}/{s['stale']}/{s['lagging']}",
                        f"{st['gaps']}/{st['stale']}/{st['lagging']}/{st['closedBefore']}+{st['closedDuring']}",
                        f"{s['deliveriesPerServerCpuSecond']} / {st['deliveriesPerServerCpuSecond']}",
                        f"{s['serverCpu']} / {st['serverCpu']} / {b['serverCpu']}",
                        f"{s['generatorCpu']}/{st['generatorCpu']}/{b['generatorCpu']}",
                    ]
                )
        self.table(
            "Market fan-out, one server process (service embedded; stock = group_send through channels-redis)",
            [
                "conns @ ticks",
                "offered/s (ticks/s seen svc/stock/bare)",
                "service/s",
                "stock/s",
                "bare/s",
                "svc/stock",
                "service p50/p99 ms",
                "stock p50/p99 ms",
                "bare p50/p99 ms",
                "svc missed/conflated/stale/lagging",
                "stock missed/stale/lagging/closed",
                "deliveries per server CPU-s svc/stock",
                "server CPU svc/stock/bare",
                "generator CPU",
            ],
            rows,
        )
        s = out["rates"].get("1000", {}).get("service")
        if s:
            complete = s["stale"] == 0 and s["lagging"] == 0 and s["gaps"] <= (s["conflatedByServer"] or 0)
            self.target(
                "fan-out 1,000 @ 10 ticks/s: every tick delivered or conflated to newest, never stale",
                f"missed {s['gaps']} (server conflated {s['conflatedByServer']}), stale {s['stale']}, "
                f"lagging {s['lagging']}, reached/tick min {s['reachedPerTickMin']}, {s['ticksPerSecond']} ticks/s",
                complete,
            )
            self.target(
                "fan-out 1,000 @ 10 ticks/s: p99 tick-to-client < 100 ms",
                f"{s['latencyMs']['p99']} ms",
                s["latencyMs"]["p99"] < 100,
            )
        sat = out["saturation"].get(str(sizes.saturation_size), {})
        s, st = sat.get("service"), sat.get("stock")
        if s and st:
            r = s["deliveriesPerSecond"] / max(1, st["deliveriesPerSecond"])
            cpu_r = (s["deliveriesPerServerCpuSecond"] or 0) / max(1, st["deliveriesPerServerCpuSecond"] or 1)
            self.target(
                f"fan-out deliveries/s >= 5x per-connection group_send through channels-redis "
                f"({sizes.saturation_size} conns, {1000 // sizes.saturation_tick_ms} ticks/s offered)",
                f"{s['deliveriesPerSecond']} vs {st['deliveriesPerSecond']}/s = {r:.2f}x "
                f"(per server CPU-second: {cpu_r:.2f}x)",
                r >= 5,
                "generator-bound if generator CPU is near 1.0" if s["generatorCpu"] > 0.9 else "",
            )

    # -- memory

    def memory(self) -> None:
        env = self.main_env()
        stock_env = self.stock_env()
        manage(stock_env, "migrate", "--noinput")
        out: dict[str, Any] = {}
        rows = []
        for n in self.sizes.memory:
            per = {}
            for kind in ("service", "stock", "bare"):
                self.log(f"memory: {n} idle connections, {kind}")
                if kind == "service":
                    process: Any = start_daphne(env, self.directory)
                    system = service_system([process], self._main_creds)
                elif kind == "stock":
                    process = start_daphne(stock_env, self.directory, app="bench.stock_channels:application")
                    system = daphne_system("stock", [process])
                else:
                    process = bare_server()
                    system = bare_system([process])
                with self.running(process):
                    per[kind] = measure_memory(system, n)
                self.log(f"  {kind}: {per[kind]['kbPerConnection']} KB per connection ({per[kind]['failed']} failed)")
            out[str(n)] = per
            s, st, b = per["service"], per["stock"], per["bare"]
            rows.append(
                [
                    n,
                    s["kbPerConnection"],
                    st["kbPerConnection"],
                    b["kbPerConnection"],
                    ratio(s["kbPerConnection"], st["kbPerConnection"]),
                    ratio(s["kbPerConnection"], b["kbPerConnection"]),
                    f"{s['rssBeforeKb'] // 1024} -> {s['rssAfterKb'] // 1024}",
                    f"{s['failed']}/{st['failed']}/{b['failed']}",
                ]
            )
            self.target(
                f"idle memory <= 25 KB per connection at {n}", f"{s['kbPerConnection']} KB", s["kbPerConnection"] <= 25
            )
        self.results["memory"] = out
        self.table(
            "Memory: server RSS per idle connection (KB), embedded",
            [
                "conns",
                "service",
                "stock Channels",
                "bare websockets",
                "svc/stock",
                "svc/bare",
                "service RSS MB",
                "failed svc/stock/bare",
            ],
            rows,
        )

    # -- production

    def production(self) -> None:
        from tests.support.production import (
            REDIS_URL,
            Cluster,
            fresh_postgres_database,
            production_env,
            require_services,
        )

        require_services()
        sizes = self.sizes
        out: dict[str, Any] = {}
        with fresh_postgres_database() as database_url, fresh_postgres_database() as stock_database_url:
            settings = {**production_env(database_url), **SERVICE_BENCH_SETTINGS, "MARKET_TICK_MS": "100"}
            env = base_env(**settings)
            manage(env, "migrate", "--noinput")
            storm_tokens = sizes.storm * sizes.storm_rounds * 2  # one and two processes, fresh devices each round
            need = max(storm_tokens, *sizes.production_heartbeat, sizes.production_memory) + 25
            self.log(f"production: issuing {need} + {sizes.production_fanout} device tokens (PostgreSQL)")
            creds = issue_clients(env, need, tag="prod")
            fan_creds = issue_clients(env, sizes.production_fanout, tag="pfan", per_user=500)
            cluster = Cluster(self.directory, env, database_url, [])
            # The baselines on the same PostgreSQL server and Redis (the fair peer's tokens in its own database).
            stock_env = {**self.stock_env(redis=True), "DATABASE_URL": stock_database_url}
            manage(stock_env, "migrate", "--noinput")
            self.log(f"production: issuing {storm_tokens} tokens (stock Channels with a token lookup, PostgreSQL)")
            stock_creds = issue_clients(stock_env, storm_tokens, tag="pstock")
            stocks: list[DaphneServer] = []
            bares: list[BaselineProcess] = []
            publisher = None
            try:
                for _ in range(2):
                    cluster.servers.append(start_daphne(env, self.directory))
                cluster.start_worker()
                for _ in range(2):
                    stocks.append(start_daphne(stock_env, self.directory, app="bench.stock_channels:application"))
                    bares.append(bare_server())
                one = {
                    "service": service_system(cluster.servers[:1], creds),
                    "stock": daphne_system("stock", stocks[:1]),
                    "bare": bare_system(bares[:1]),
                }
                two = {
                    "service": service_system(cluster.servers, creds),
                    "stock": daphne_system("stock", stocks),
                    "bare": bare_system(bares),
                }
                self.log(f"production: connect storm of {sizes.storm}, best of {sizes.storm_rounds} rounds")
                out["connect"] = {}
                for index, (procs, systems) in enumerate((("1", one), ("2", two))):
                    peer = System("stock-auth", systems["stock"].bases, systems["stock"].pids, stock_creds)
                    per: dict[str, dict] = {}
                    for round_ in range(sizes.storm_rounds):
                        offset = (index * sizes.storm_rounds + round_) * sizes.storm
                        for kind, system in (("service", systems["service"]), ("stock-auth", peer)):
                            run = measure_storm(system, sizes.storm, sizes.storm_concurrency, offset=offset)
                            per[kind] = best_of(per.get(kind), run, "connectionsPerSecond")
                    out["connect"][procs] = per
                if self.args.production_connect_only:
                    self.results["production"] = out
                    self.production_connect_targets(out)
                    return
                out["heartbeat"] = {}
                for n in sizes.production_heartbeat:
                    for procs, systems in (("1", one), ("2", two)):
                        self.log(f"production heartbeat: {n} connections on {procs} process(es)")
                        per: dict[str, dict] = {}
                        for _ in range(self.args.repeat):
                            for kind, system in systems.items():
                                run = measure_heartbeat(system, n, sizes.heartbeat_seconds, sizes.generators)
                                per[kind] = best_of(per.get(kind), run, "roundTripsPerSecond")
                        out["heartbeat"][f"{n}x{procs}"] = per
                started = start_simulators(cluster.servers[0], fan_creds)
                publisher = BaselineProcess(["publish", "--tick-ms", "100"], env=stock_env).start()
                self.log(f"production fan-out: {sizes.production_fanout} connections, {started} simulators")
                out["fanout"] = {}
                for procs in ("1", "2"):
                    service = service_system(cluster.servers[: int(procs)], fan_creds)
                    stock = daphne_system("stock", stocks[: int(procs)])
                    out["fanout"][procs] = {
                        "service": measure_fanout(
                            service,
                            sizes.production_fanout,
                            sizes.fanout_seconds,
                            100,
                            extra_pids=[w.process.pid for w in cluster.workers],
                        ),
                        "stock": measure_fanout(
                            stock, sizes.production_fanout, sizes.fanout_seconds, 100, extra_pids=[publisher.pid]
                        ),
                    }
                self.log(f"production memory: {sizes.production_memory} idle connections on 2 processes")
                out["memory"] = {
                    "service": measure_memory(two["service"], sizes.production_memory),
                    "stock": measure_memory(two["stock"], sizes.production_memory),
                }
                out["redis"] = REDIS_URL
            finally:
                for process in [publisher, *bares, *stocks, *cluster.workers, *cluster.servers]:
                    if process is not None:
                        with contextlib.suppress(Exception):
                            process.stop()
        self.results["production"] = out
        self.production_tables(out)

    def production_tables(self, out: dict) -> None:
        def pct(x: dict, key: str) -> str:
            return f"{x[key]['p50']} / {x[key]['p99']}"

        def cpu(a: dict, b: dict) -> str:
            return f"{a['serverCpu']} -> {b['serverCpu']}"

        def load(a: dict, b: dict) -> str:
            gen = [max(x["generatorCpu"]) if isinstance(x["generatorCpu"], list) else x["generatorCpu"] for x in (a, b)]
            return f"{gen[0]} -> {gen[1]} / {a['otherCpu']} -> {b['otherCpu']}"

        rows = []
        for kind, label in (("service", "service"), ("stock-auth", "stock Channels + token lookup")):
            c1, c2 = out["connect"]["1"][kind], out["connect"]["2"][kind]
            rows.append(
                [
                    f"connect storm ({c1['connections']}): {label} connections/s",
                    c1["connectionsPerSecond"],
                    c2["connectionsPerSecond"],
                    ratio(c2["connectionsPerSecond"], c1["connectionsPerSecond"]),
                    f"{pct(c1, 'msToConnected')} -> {pct(c2, 'msToConnected')}",
                    cpu(c1, c2),
                    load(c1, c2),
                ]
            )
        ratios = []
        labels = {"service": "service", "stock": "stock Channels (Redis)", "bare": "bare websockets"}
        for n in self.sizes.production_heartbeat:
            one, two = out["heartbeat"][f"{n}x1"], out["heartbeat"][f"{n}x2"]
            for kind, label in labels.items():
                a, b = one[kind], two[kind]
                rows.append(
                    [
                        f"heartbeat {n} conns: {label} round trips/s",
                        a["roundTripsPerSecond"],
                        b["roundTripsPerSecond"],
                        ratio(b["roundTripsPerSecond"], a["roundTripsPerSecond"]),
                        f"{pct(a, 'rttMs')} -> {pct(b, 'rttMs')}",
                        cpu(a, b),
                        load(a, b),
                    ]
                )
            ratios.append(
                [f"heartbeats/s at {n} connections"]
                + [
                    ratio(per["service"]["roundTripsPerSecond"], per[other]["roundTripsPerSecond"])
                    for per in (one, two)
                    for other in ("stock", "bare")
                ]
            )
        for kind in ("service", "stock"):
            a, b = out["fanout"]["1"][kind], out["fanout"]["2"][kind]
            rows.append(
                [
                    f"fan-out {a['connections']} @ 10 ticks/s: {labels[kind]} deliveries/s",
                    a["deliveriesPerSecond"],
                    b["deliveriesPerSecond"],
                    ratio(b["deliveriesPerSecond"], a["deliveriesPerSecond"]),
                    f"{pct(a, 'latencyMs')} -> {pct(b, 'latencyMs')}",
                    cpu(a, b),
                    f"missed {a['gaps']}/{b['gaps']}, stale {a['stale']}/{b['stale']}, "
                    f"lagging {a['lagging']}/{b['lagging']}",
                ]
            )
        fan1, fan2 = out["fanout"]["1"], out["fanout"]["2"]
        p99 = [ratio(per["service"]["latencyMs"]["p99"], per["stock"]["latencyMs"]["p99"]) for per in (fan1, fan2)]
        ratios.append(["fan-out p99 tick-to-client ms (below 1: the service is faster)", p99[0], "", p99[1], ""])
        m = out["memory"]
        for kind in ("service", "stock"):
            rows.append(
                [
                    f"memory: KB per idle connection, {labels[kind]} ({m[kind]['connections']} split over 2)",
                    "-",
                    m[kind]["kbPerConnection"],
                    "",
                    "",
                    "",
                    f"failed {m[kind]['failed']}",
                ]
            )
        self.table(
            "Production mode (PostgreSQL, Redis, one simulator worker): one vs two daphne processes",
            [
                "figure",
                "1 process",
                "2 processes",
                "2/1",
                "p50 / p99 ms (1 -> 2)",
                "server CPU (1 -> 2)",
                "generator / other CPU (1 -> 2)",
            ],
            rows,
        )
        self.table(
            "Production mode ratios",
            ["figure", "svc/stock (1 proc)", "svc/bare (1 proc)", "svc/stock (2 procs)", "svc/bare (2 procs)"],
            ratios,
        )
        biggest = max(self.sizes.production_heartbeat)
        a, b = out["heartbeat"][f"{biggest}x1"]["service"], out["heartbeat"][f"{biggest}x2"]["service"]
        r = b["roundTripsPerSecond"] / a["roundTripsPerSecond"]
        self.target(
            f"throughput with two server processes behind Redis >= 1.7x one (heartbeat, {biggest} connections)",
            f"{b['roundTripsPerSecond']} vs {a['roundTripsPerSecond']}/s = {r:.2f}x",
            r >= 1.7,
            f"{os.cpu_count()} cores shared by the servers, Redis and the load generator",
        )
        self.production_connect_targets(out)
        self.target(
            "production idle memory <= 25 KB per connection",
            f"{m['service']['kbPerConnection']} KB",
            m["service"]["kbPerConnection"] <= 25,
        )

    def production_connect_targets(self, out: dict) -> None:
        rows = []
        for procs in ("1", "2"):
            svc, peer = out["connect"][procs]["service"], out["connect"][procs]["stock-auth"]
            r = svc["connectionsPerSecond"] / max(peer["connectionsPerSecond"], 1e-9)
            self.target(
                f"connect storm (production, {procs} process(es)) >= 1.0x stock Channels with a token lookup"
                " on PostgreSQL and Redis",
                f"{svc['connectionsPerSecond']} vs {peer['connectionsPerSecond']}/s = {r:.2f}x",
                r >= 1.0,
            )
            rows.append(
                [
                    procs,
                    svc["connectionsPerSecond"],
                    peer["connectionsPerSecond"],
                    f"{r:.2f}x",
                    svc["serverCpuMsPerConnection"],
                    peer["serverCpuMsPerConnection"],
                    f"{svc['msToConnected']['p99']} / {peer['msToConnected']['p99']}",
                ]
            )
        self.table(
            "Production connect storm (PostgreSQL, Redis): the service and stock Channels with a token lookup",
            [
                "processes",
                "service/s",
                "stock+token/s",
                "ratio",
                "CPU ms/conn svc",
                "CPU ms/conn stock",
                "p99 ms svc / stock",
            ],
            rows,
        )

    # -- fleet restart

    def writes(self) -> None:
        from bench import write_rate

        traders = self.args.writes_traders or (50 if self.args.quick else 300)
        seconds = 20.0 if self.args.quick else 60.0
        self.log(f"writes: {traders} traders, {seconds:g} s idle then {seconds:g} s trading")
        out = write_rate.run(traders, seconds, seconds, self.args.writes_order_every_s, log=self.log)
        self.results["writes"] = out
        self.table(
            f"Backing-service operations of {out['traders']} connected traders (an order every "
            f"{out['orderEveryS']:g} s each while trading), per second and per 1,000 traders per second",
            write_rate.HEADERS,
            write_rate.table_rows(out),
        )

    def restart(self) -> None:
        """Production layout behind the shipped nginx recipe: N clients that stay, one of two
        daphne processes stopped (SIGTERM) and started again while numbered pushes flow."""
        from tests.support.nginx import start_nginx
        from tests.support.production import fresh_postgres_database, production_env, require_services

        require_services()
        n = self.sizes.restart
        out: dict[str, Any] = {"clients": n}
        with fresh_postgres_database() as database_url:
            env = base_env(**{**production_env(database_url), **SERVICE_BENCH_SETTINGS})
            manage(env, "migrate", "--noinput")
            self.log(f"fleet restart: issuing {n} device tokens (PostgreSQL)")
            # Traders of two devices each: a numbered push for one session goes to its user's
            # group, which every connection of the user hears (and all but one ignore).
            creds = issue_clients(env, n, tag="fleet", per_user=2)
            args = (*PRODUCTION_DAPHNE_ARGS, "--proxy-headers")
            servers = [DaphneServer(env=env, args=args).start(self.directory) for _ in range(2)]
            (self.directory / "nginx").mkdir(exist_ok=True)
            proxy = start_nginx(self.directory / "nginx", servers, worker_connections=4 * n + 1000)
            pusher: subprocess.Popen | None = None
            generator = Generator(
                {
                    "kind": "fleet",
                    "conns": [
                        {"url": f"{proxy.ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}", **c}
                        for c in creds
                    ],
                    "concurrency": self.sizes.storm_concurrency,
                }
            ).start()
            try:
                ready = generator.read("ready", timeout=600)
                self.log(f"fleet restart: {len(ready['sessions'])} clients connected through nginx")
                pusher = subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).with_name("fleet_pusher.py")),
                        "--rate",
                        str(self.sizes.restart_push_rate),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert pusher.stdin is not None and pusher.stdout is not None
                pusher.stdin.write(json.dumps(ready["sessions"]) + "\n")
                pusher.stdin.flush()
                pusher.stdout.readline()  # ready
                generator.tell("go")
                time.sleep(3)
                victim = servers[0]
                assert victim.process is not None
                held = scrape_metric(victim.http, "session_connections_open")
                stopped_at = time.time()
                victim.process.send_signal(signal.SIGTERM)
                victim.process.wait(120)
                exited_at = time.time()
                servers[0] = DaphneServer(env=env, args=args, port=victim.port).start(self.directory)
                restarted_at = time.time()
                self.log(
                    f"fleet restart: SIGTERM to a process holding {held:.0f}; exited in {exited_at - stopped_at:.1f} s"
                )
                deadline = time.monotonic() + 90
                calm = 0
                down: list[tuple[float, int]] = []
                while time.monotonic() < deadline and calm < 3:
                    line = generator.read("progress", timeout=30)
                    down.append((round(line["at"] - stopped_at, 1), line["down"], line["generatorCpu"]))
                    calm = calm + 1 if line["down"] == 0 and line["at"] - stopped_at > 2 else 0
                out["downAfterSigterm"] = down
                pusher.stdin.write("stop\n")
                pusher.stdin.flush()
                pushed = json.loads(pusher.stdout.readline())
                time.sleep(10)  # the last pushes reach their clients
                generator.tell("finish")
                result = generator.read("result", timeout=300)
                errors = collections.Counter(
                    re.sub(r"^.*?\*\d+ |, client:.*$|\d+", "", line)[:120]
                    for line in (self.directory / "nginx" / "error.log").read_text(errors="replace").splitlines()
                )
                out["proxyErrors"] = dict(errors.most_common(8))
                out["serverWarnings"] = [
                    line[:3000]
                    for server in servers
                    for line in server.log().splitlines()
                    if "unavailable" in line or "Error" in line
                ][:20]
            finally:
                for process in (pusher, generator.process):
                    if process is not None and process.poll() is None:
                        process.kill()
                for server in servers:
                    with contextlib.suppress(Exception):
                        server.stop()
                with contextlib.suppress(Exception):
                    proxy.process.send_signal(signal.SIGQUIT)
                    proxy.process.wait(10)
        out.update(
            fleet_figures(
                result["clients"],
                pushed,
                stopped_at=stopped_at,
                held=held,
                exited_s=exited_at - stopped_at,
                restarted_s=restarted_at - stopped_at,
            )
        )
        self.results["restart"] = out
        f = out
        self.table(
            f"Fleet restart: {n} clients through nginx on two daphne processes (PostgreSQL, Redis),"
            " one stopped with SIGTERM and started again",
            ["figure", "value"],
            [
                ["connections on the stopped process", f["held"]],
                ["clients told `shutdown` / widest reconnectAfterMs", f"{f['affected']} / {f['hintMaxMs']} ms"],
                ["stopped process exited / started again after", f"{f['exitedS']} s / {f['restartedS']} s"],
                ["every client back and recovered after SIGTERM", f"{f['allBackS']} s"],
                [
                    "outage per client p50 / p99 / max",
                    f"{f['outageS']['p50']} / {f['outageS']['p99']} / {f['outageS']['max']} s",
                ],
                [
                    "handshakes refused server_busy / other / no socket",
                    f"{f['busy']} / {f['refused']} {f['refusedCodes'] or ''} / {f['failedConnects']}",
                ],
                [
                    "reconnect requests refused (sent again) / not recovered / still down",
                    f"{f['resumeRetries']} / {f['unrecovered']} / {f['stillDown']}",
                ],
                ["pushes made / lost / twice", f"{f['pushed']} / {f['lost']} / {f['duplicates']}"],
                [
                    "live push, made to received, p50 / p99 / max",
                    f"{f['livePushMs']['p50']} / {f['livePushMs']['p99']} / {f['livePushMs']['max']} ms",
                ],
            ],
        )
        self.target(
            "fleet restart: every client back and recovered within reconnectAfterMs's window + 2 s",
            f"{f['allBackS']} s vs {f['hintMaxMs'] / 1000 + 2:.1f} s",
            f["allBackS"] is not None and f["allBackS"] <= f["hintMaxMs"] / 1000 + 2 and f["stillDown"] == 0,
        )
        self.target(
            "fleet restart: no client waits longer than 10 s",
            f"max outage {f['outageS']['max']} s",
            f["outageS"]["max"] <= 10,
        )
        self.target(
            "fleet restart: no push lost or delivered twice",
            f"{f['lost']} lost, {f['duplicates']} twice",
            f["lost"] == 0 and f["duplicates"] == 0,
        )

    # -- matching (issue 16)

    def matching(self) -> None:
        """The exchange's matcher with books on, against the matcher of before (bench/matching.py), in a
        process of its own: N simulators with open orders of every type on the eight instruments."""
        simulators = 100 if self.args.quick else 1_000
        self.log(f"matching: {simulators} simulators, every order type on 8 instruments")
        out = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("matching.py")), "--simulators", str(simulators)],
            capture_output=True,
            text=True,
            check=True,
            timeout=1_800,
        ).stdout
        result = json.loads(Path(out.strip().splitlines()[-1]).read_text())
        self.results["matching"] = result
        self.table(
            "Matching one tick with books on (issue 16)",
            ["simulators", "open orders", "ms/tick", "µs/simulator", "of the 500 ms tick", "old matcher ms", "ratio"],
            [
                [
                    result["simulators"],
                    result["openOrdersAtStart"],
                    result["msPerTickMedian"],
                    result["usPerSimulator"],
                    f"{result['shareOfTickInterval']:.1%}",
                    result["baselineMsPerTickMedian"],
                    f"{result['ratioToBaseline']}x",
                ]
            ],
        )
        self.target(
            f"one core matches {simulators} simulators within a tick interval",
            f"{result['msPerTickMedian']} ms of 500",
            result["msPerTickMedian"] < 500,
            "database writes of the fills not included",
        )

    # -- capacity

    def capacity(self) -> None:
        """Idle traders held: on one process (embedded) at each of the sizes, then on several
        processes sharing PostgreSQL and Redis (the layout for more than one process)."""
        sizes = self.sizes
        beat_s = sizes.capacity_beat_s
        out: dict[str, Any] = {"beatS": beat_s, "seconds": sizes.capacity_seconds, "steps": {}}
        self.results["capacity"] = out
        measure = dict(
            seconds=sizes.capacity_seconds,
            generators=sizes.capacity_generators,
            in_flight=sizes.capacity_in_flight,
            beat_s=beat_s,
            connect_s=sizes.capacity_connect_s,
        )

        def step(label: str, run: Callable[..., dict], *args: Any) -> None:
            # One step's failure (a server that fell over at 19,000) must not lose the next.
            try:
                result = run(*args, measure)
            except Exception as error:
                self.log(f"  capacity {label}: FAILED {type(error).__name__}: {error}")
                traceback.print_exc()
                result = Failed(error=f"{type(error).__name__}: {error}"[:2000])
            else:
                self.log(
                    f"  held {result['held']} ({result['failed']} failed, {result['notOpenInTime']} not open in time)"
                    f" in {result['connectSeconds']} s; RSS "
                    f"{result['rssKb'] // 1024} MB ({result['kbPerConnection']} KB each); CPU {result['serverCpu']};"
                    f" heartbeat p50/p99 {result['heartbeatMs']['p50']}/{result['heartbeatMs']['p99']} ms;"
                    f" unanswered {result['unanswered']}; closed {result['closedByServer']};"
                    f" other CPU {result['otherCpu']}"
                    + (
                        f"; worker and Redis CPU {result['backingCpu']}, RSS {result['backingRssKb']}"
                        if result["backingRssKb"]["before"]
                        else ""
                    )
                )
            out["steps"][label] = result

        if sizes.capacity:
            env = embedded_env(self.directory, "capacity", **capacity_settings(beat_s))
            manage(env, "migrate", "--noinput")
            need = sum(sizes.capacity) + CAPACITY_WARMUP * len(sizes.capacity)
            self.log(f"capacity: issuing {need} device tokens (embedded)")
            creds = issue_clients(env, need, tag="cap")
            offset = 0
            for n in sizes.capacity:
                self.log(f"capacity: {n} idle traders on one process (embedded), a beat every {beat_s:g} s")
                step(f"{n}x1", self.capacity_embedded, env, creds, n, offset)
                offset += n + CAPACITY_WARMUP
        total, processes = sizes.capacity_fleet
        if total:
            step(f"{total}x{processes}", self.capacity_fleet, total, processes)
        self.capacity_table(out)

    def capacity_embedded(self, env: dict[str, str], creds: list[dict], n: int, offset: int, measure: dict) -> dict:
        server = start_daphne(env, self.directory)
        with self.running(server):
            # Devices never seen before at every step (a fresh process each): each connect opens a session.
            return measure_capacity(service_system([server], creds), n, offset=offset, **measure)

    def capacity_fleet(self, total: int, processes: int, measure: dict) -> dict:
        from tests.support.production import Cluster, fresh_postgres_database, production_env, require_services

        require_services()
        with fresh_postgres_database() as database_url:
            beats = capacity_settings(measure["beat_s"])
            env = base_env(**{**production_env(database_url), **SERVICE_BENCH_SETTINGS, **beats})
            manage(env, "migrate", "--noinput")
            need = total + CAPACITY_WARMUP * processes
            self.log(f"capacity: issuing {need} device tokens (PostgreSQL)")
            creds = issue_clients(env, need, tag="capfleet")
            cluster = Cluster(self.directory, env, database_url, [])
            try:
                for _ in range(processes):
                    cluster.servers.append(start_daphne(env, self.directory))
                cluster.start_worker()
                self.log(f"capacity: {total} idle traders on {processes} processes (PostgreSQL, Redis, a worker)")
                redis = redis_server_pid()
                backing = [w.process.pid for w in cluster.workers] + ([redis] if redis else [])
                return measure_capacity(
                    service_system(cluster.servers, creds), total, offset=0, backing=backing, **measure
                )
            finally:
                for process in [*cluster.workers, *cluster.servers]:
                    with contextlib.suppress(Exception):
                        process.stop()

    def capacity_table(self, out: dict) -> None:
        rows = []
        for label, r in out["steps"].items():
            n, processes = (int(x) for x in label.split("x"))
            if not r:
                rows.append([f"{n:,}", processes, "failed", "", "", "", "", "", "", "", r.get("error", "")[:120]])
                continue
            rows.append(
                [
                    f"{n:,}",
                    f"{processes} ({'embedded' if processes == 1 else 'PostgreSQL, Redis'})",
                    r["held"],
                    f"{r['failed']}" + (f" + {r['notOpenInTime']} not open in time" if r["notOpenInTime"] else ""),
                    f"{r['rssKb'] / 1024:.0f} / {r['kbPerConnection']}",
                    f"{100 * r['serverCpu']:.1f}",
                    f"{r['heartbeatMs']['p50']} / {r['heartbeatMs']['p99']}",
                    f"{r['unanswered']} of {r['beatsInWindow']}",
                    sum(r["closedByServer"].values()),
                    f"{r['connectSeconds']} s ({r['connectionsPerSecond']}/s), p99 {r['handshakeMs']['p99']} ms each",
                    f"{100 * r['generatorCpu']:.0f} / {100 * r['otherCpu']:.0f}",
                ]
            )
        self.table(
            f"Capacity: idle traders, a heartbeat every {out['beatS']:g} s each, measured over {out['seconds']:g} s",
            [
                "traders",
                "processes",
                "held",
                "failed",
                "RSS MB total / KB per connection",
                "server CPU % of a core",
                "heartbeat p50 / p99 ms",
                "beats unanswered",
                "closed by server",
                "connect time",
                "generators / other CPU %",
            ],
            rows,
        )

    # -- run

    def run(self) -> Path:
        scenarios = set(self.args.scenarios)
        started = time.time()
        meta = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "quick": self.args.quick,
            "cpus": os.cpu_count(),
            "loadAverageAtStart": load_average(),
            "nofile": raise_nofile_limit(),
            "git": git_state(),
            "sizes": self.sizes.__dict__,
            "python": sys.version.split()[0],
        }
        self.log(f"suite: {sorted(scenarios)} in {self.directory} (load average {meta['loadAverageAtStart']})")
        steps: list[tuple[str, Callable[[], None]]] = []
        if scenarios & {"connect", "heartbeat"}:
            steps.append(("connect/heartbeat", lambda: self.connect_and_heartbeat(scenarios)))
        steps += [
            (name, getattr(self, name))
            for name in ("fanout", "memory", "production", "restart", "writes", "matching", "capacity")
            if name in scenarios
        ]
        try:
            for name, step in steps:
                try:
                    step()
                except Exception as error:
                    # One scenario's failure (say, a server that fell over) must not lose the others.
                    self.log(f"{name} FAILED: {type(error).__name__}: {error}")
                    traceback.print_exc()
                    self.results.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"[:2000]
        finally:
            meta["seconds"] = round(time.time() - started)
            meta["loadAverageAtEnd"] = load_average()
            if self.targets:
                self.table(
                    "Targets (issue 7; ratios from this one run on this machine)",
                    ["target", "measured", "met"],
                    [
                        [
                            t["target"],
                            t["measured"] + (f" ({t['note']})" if t["note"] else ""),
                            {True: "yes", False: "NO", None: "-"}[t["met"]],
                        ]
                        for t in self.targets
                    ],
                )
            notes = (
                f"\nOne load-generator process per measurement ({self.sizes.generators} for heartbeats), "
                f"on the same {os.cpu_count()}-core machine as the servers: 'generator CPU' near 1.0 means the "
                "generator, not the server, set the pace. Server CPU is in cores (1.0 = one core busy)."
            )
            print(notes)
            path = write_results(
                "suite",
                {"meta": meta, "targets": self.targets, "results": self.results, "tables": self.tables, "notes": notes},
            )
            print(f"written {path} ({meta['seconds']} s)")
            if self.args.keep:
                print(f"kept the servers' logs in {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)
        return path


class Failed(dict):
    """A measurement that failed: falsy, prints as `failed` whatever field a table asks for."""

    def __getitem__(self, key: str) -> Failed:
        return self

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return "failed"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return "failed"


def best_of(previous: dict | None, run: dict, key: str) -> dict:
    """Keep the better of repeated runs (the machine is shared: interference only ever slows
    a run down), remembering every run's figure."""
    runs = [*(previous or {}).get("runs", []), run[key]]
    best = run if previous is None or run[key] > previous[key] else previous
    profile = run.get("profile") or (previous or {}).get("profile")
    return {**best, "runs": runs, "profile": profile}


def fleet_figures(
    clients: list[dict], pushed: dict, *, stopped_at: float, held: float, exited_s: float, restarted_s: float
) -> dict:
    """What the fleet-restart scenario reports, from every client's own account and the stream heads."""
    affected = [c for c in clients if c["hints"]]
    outages = [o for c in clients for o in c["outages"]]
    latencies = [x for c in clients for x in c.get("latencies", [])]
    back = [t - stopped_at for c in affected for t in c["recoveredAt"] if t >= stopped_at]
    lost = duplicates = 0
    losers = []
    for c in clients:
        head = pushed["heads"].get(c["sessionId"]) if c["sessionId"] else None
        if head is not None:
            missing = sorted(set(range(c["startSeq"] + 1, head[1] + 1)) - set(c["seen"]))
            lost += len(missing)
            if missing and len(losers) < 10:
                losers.append(
                    {
                        "missing": missing[:10],
                        "head": head,
                        "startSeq": c["startSeq"],
                        "seenLast": c["seen"][-3:],
                        "epochChanges": c["epochChanges"],
                        "hints": c["hints"],
                        "outages": c["outages"],
                        "closeCodes": c["closeCodes"],
                    }
                )
        duplicates += c["duplicates"]
    return {
        "held": round(held),
        "affected": len(affected),
        "hintMaxMs": max((h for c in affected for h in c["hints"]), default=0),
        "exitedS": round(exited_s, 2),
        "restartedS": round(restarted_s, 2),
        "allBackS": round(max(back), 2) if back and len(back) >= len(affected) else None,
        "outageS": {**summary(outages), "max": round(max(outages), 3) if outages else None},
        "livePushMs": {**summary(latencies), "max": round(max(latencies), 1) if latencies else None},
        "busy": sum(len(c["busy"]) for c in clients),
        "refused": sum(sum(c["refused"].values()) for c in clients),
        "refusedCodes": dict(sum((collections.Counter(c["refused"]) for c in clients), collections.Counter())),
        "closeCodes": dict(sum((collections.Counter(c["closeCodes"]) for c in clients), collections.Counter())),
        "failureKinds": dict(
            sum((collections.Counter(c.get("failureKinds", {})) for c in clients), collections.Counter()).most_common(8)
        ),
        "failedConnects": sum(c["failedConnects"] for c in clients),
        "unrecovered": sum(c["unrecovered"] for c in clients),
        "resumeRetries": sum(c.get("resumeRetries", 0) for c in clients),
        "stillDown": sum(1 for c in clients if c["stillDown"]),
        "pushed": pushed["pushed"],
        "lost": lost,
        "losers": losers,
        "duplicates": duplicates,
    }


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b or isinstance(a, Failed) or isinstance(b, Failed):
        return "-"
    return f"{a / b:.2f}x"


def parse_sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_fleet(text: str) -> tuple[int, int]:
    """`60000x4`: connections and processes; `0`: none."""
    total, _, processes = text.partition("x")
    return (int(total), int(processes or 1)) if int(total) else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=lambda s: [x for x in s.split(",") if x], default=list(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the whole suite")
    parser.add_argument("--storm-size", type=int)
    parser.add_argument("--storm-concurrency", type=int, default=100)
    parser.add_argument("--storm-rounds", type=int, help="interleaved storm rounds, best kept (default 3)")
    parser.add_argument("--login-sample", type=int, help="HTTP logins timed next to the storm (default 40)")
    parser.add_argument("--heartbeat-sizes", type=parse_sizes)
    parser.add_argument("--seconds", type=float, help="heartbeat measuring window (default 5)")
    parser.add_argument("--fanout-sizes", type=parse_sizes)
    parser.add_argument("--fanout-seconds", type=float, help="fan-out measuring window (default 10)")
    parser.add_argument("--saturation-size", type=int)
    parser.add_argument("--saturation-tick-ms", type=int, default=20)
    parser.add_argument("--memory-sizes", type=parse_sizes)
    parser.add_argument("--production-heartbeat-sizes", type=parse_sizes)
    parser.add_argument("--production-fanout-size", type=int)
    parser.add_argument("--production-memory-size", type=int)
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (the servers' logs) after the run"
    )
    parser.add_argument(
        "--production-connect-only", action="store_true", help="production: the connect storm and its peer only"
    )
    parser.add_argument("--restart-clients", type=int, help="clients of the fleet restart (default 4000)")
    parser.add_argument("--restart-push-rate", type=int, default=400, help="numbered pushes a second during it")
    parser.add_argument("--writes-traders", type=int, help="connected traders of `writes` (default 300)")
    parser.add_argument("--writes-order-every-s", type=float, default=60, help="`writes`: seconds between orders")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes for heartbeats")
    parser.add_argument(
        "--capacity-sizes", type=parse_sizes, help="idle traders on one process (default 5000,10000,19000; '' none)"
    )
    parser.add_argument(
        "--capacity-fleet",
        type=parse_fleet,
        help="idle traders x processes in production mode (default 60000x4; 0 for none)",
    )
    parser.add_argument("--capacity-seconds", type=float, help="capacity measuring window (default 60)")
    parser.add_argument(
        "--capacity-generators", type=int, default=8, help="load-generator processes, one loopback address each"
    )
    parser.add_argument("--capacity-in-flight", type=int, default=200, help="capacity: handshakes in flight in all")
    parser.add_argument("--capacity-beat-s", type=float, default=25.0, help="capacity: seconds between heartbeats")
    parser.add_argument(
        "--capacity-connect-s",
        type=float,
        default=600,
        help="capacity: a step measures what is open after this many seconds of connecting",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="heartbeat runs per point, the best kept (the machine may be shared)"
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the service during the 50-connection heartbeat")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {','.join(SCENARIOS)}")
    if not 1 <= args.capacity_generators <= 250:
        parser.error("--capacity-generators: 1 to 250 (each dials from its own 127.0.0.x)")
    raise_nofile_limit()
    Suite(args).run()


if __name__ == "__main__":
    main()
