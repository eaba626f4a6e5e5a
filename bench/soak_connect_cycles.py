"""Soak (issue 6): many connect/disconnect cycles against the service, watching for leaks.

Usage:
  .venv/bin/python bench/soak_connect_cycles.py [--cycles 10000] [--concurrency 20] [--every 1000]
                                                [--mode production|embedded] [--servers 2]

Production mode (default) is the real layout: a fresh PostgreSQL database, Redis with a private
prefix, `--servers` daphne processes started as deploy/Procfile does and one simulator worker.
Embedded mode is the default deployment (one daphne, SQLite, in-memory layer).

A load-generator process (bench/loadgen.py) runs `--concurrency` loops of: open a socket with a
token, wait for `connected`, close; each loop owns a few devices and reuses them, so sessions
are resumed as a reconnecting client's would be. Every `--every` cycles it reports, and this
script samples the servers: RSS of each daphne process and of the worker, the Redis connections
those processes hold (their sockets to Redis, from /proc) and Redis's `connected_clients` (INFO
clients, every client of that Redis), the database's connections, and open file descriptors.
A last sample is taken after a few idle seconds. The verdict compares the first thousand cycles'
sample with the last: memory growth per cycle, and whether the connection counts stayed flat.
Prints a table and writes bench/results/soak-connect-cycles-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    SERVICE_BENCH_SETTINGS,
    Generator,
    embedded_env,
    git_state,
    issue_clients,
    load_average,
    markdown_table,
    raise_nofile_limit,
    rss_kb,
    start_daphne,
    summary,
    write_results,
)
from tests.support.liveserver import DaphneServer, WorkerProcess, base_env, manage

REDIS_PORT_HEX = None  # set from the Redis URL


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def connections_to_port(pid: int, port: int) -> int:
    """Established TCP connections of a process to a local port (its Redis or PostgreSQL sockets)."""
    inodes = socket_inodes(pid)
    wanted = f":{port:04X}"
    count = 0
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[2].endswith(wanted) and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


class Probe:
    """One sample of everything that could leak."""

    def __init__(
        self, servers: list[DaphneServer], worker: WorkerProcess | None, redis_url: str | None, database_url: str | None
    ) -> None:
        self.servers, self.worker = servers, worker
        self.redis = None
        self.redis_port = 0
        if redis_url:
            from urllib.parse import urlsplit

            import redis

            self.redis = redis.Redis.from_url(redis_url)
            self.redis_port = urlsplit(redis_url).port or 6379
        self.database_url = database_url

    def sample(self, cycles: int, extra: dict[str, Any]) -> dict[str, Any]:
        pids = [s.process.pid for s in self.servers]
        row: dict[str, Any] = {
            "cycles": cycles,
            "serverRssKb": [rss_kb(p) for p in pids],
            "serverFds": [open_fds(p) for p in pids],
            **extra,
        }
        if self.worker is not None:
            row["workerRssKb"] = rss_kb(self.worker.process.pid)
        if self.redis is not None:
            row["redisConnectionsOfServers"] = [connections_to_port(p, self.redis_port) for p in pids]
            if self.worker is not None:
                row["redisConnectionsOfWorker"] = connections_to_port(self.worker.process.pid, self.redis_port)
            row["redisConnectedClients"] = self.redis.info("clients")["connected_clients"]
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as db:
                row["databaseConnections"] = (
                    db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0]
                    - 1
                )  # less this one
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--devices-per-loop", type=int, default=5)
    parser.add_argument("--mode", choices=("production", "embedded"), default="production")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes (production mode)")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    raise_nofile_limit()
    directory = Path(tempfile.mkdtemp(prefix="soak-"))
    devices = args.concurrency * args.devices_per_loop
    processes: list[Any] = []
    database_cm = None
    started = time.time()
    rows: list[dict[str, Any]] = []
    try:
        if args.mode == "production":
            from tests.support.production import REDIS_URL, fresh_postgres_database, production_env, require_services

            require_services()
            database_cm = fresh_postgres_database()
            database_url = database_cm.__enter__()
            env = base_env(**{**production_env(database_url), **SERVICE_BENCH_SETTINGS})
            redis_url = REDIS_URL
        else:
            env = embedded_env(directory, "soak")
            database_url = redis_url = None
        manage(env, "migrate", "--noinput")
        creds = issue_clients(env, devices, tag="soak", per_user=10)
        servers = [start_daphne(env, directory) for _ in range(args.servers if args.mode == "production" else 1)]
        processes += servers
        worker = None
        if args.mode == "production":
            worker = WorkerProcess(env=env).start(directory)
            processes.append(worker)
        probe = Probe(servers, worker, redis_url, database_url)
        conns = [
            {
                "url": f"{servers[i % len(servers)].ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}",
                "deviceId": c["deviceId"],
                "expect": "connected",
            }
            for i, c in enumerate(creds)
        ]
        print(
            f"soak: {args.cycles} connect/disconnect cycles, {args.concurrency} at a time, {devices} devices, "
            f"{args.mode} mode with {len(servers)} daphne process(es)",
            flush=True,
        )
        time.sleep(2)
        rows.append(probe.sample(0, {"elapsed": 0.0}))
        generator = Generator(
            {
                "kind": "cycles",
                "conns": conns,
                "cycles": args.cycles,
                "every": args.every,
                "concurrency": args.concurrency,
            }
        ).start()
        try:
            generator.read("ready")
            generator.tell("go")
            while True:
                line = generator.read(("progress", "result"), timeout=3600)
                if line["event"] == "result":
                    result = line
                    break
                rows.append(
                    probe.sample(
                        line["cycles"],
                        {"elapsed": line["elapsed"], "connectP50Ms": line["connectP50"], "failures": line["failures"]},
                    )
                )
                print_row(rows[-1])
        finally:
            generator.finish()
        time.sleep(args.idle_seconds)
        rows.append(probe.sample(result["cycles"], {"elapsed": round(time.time() - started, 1), "afterIdle": True}))
        print_row(rows[-1])
    finally:
        for process in reversed(processes):
            with contextlib.suppress(Exception):
                process.stop()
        if database_cm is not None:
            database_cm.__exit__(None, None, None)

    verdict = judge(rows, args.every)
    table = markdown_table(
        [
            "cycles",
            "s",
            "connect p50 ms",
            "server RSS MB",
            "worker RSS MB",
            "Redis conns of servers",
            "Redis connected_clients",
            "DB conns",
            "server fds",
            "failures",
        ],
        [
            [
                f"{r['cycles']}{' (idle)' if r.get('afterIdle') else ''}",
                r.get("elapsed", ""),
                r.get("connectP50Ms", ""),
                "+".join(f"{kb / 1024:.1f}" for kb in r["serverRssKb"]),
                f"{r['workerRssKb'] / 1024:.1f}" if "workerRssKb" in r else "-",
                "+".join(str(x) for x in r.get("redisConnectionsOfServers", [])) or "-",
                r.get("redisConnectedClients", "-"),
                r.get("databaseConnections", "-"),
                "+".join(str(x) for x in r["serverFds"]),
                r.get("failures", ""),
            ]
            for r in rows
        ],
    )
    print("\n" + table)
    print(
        f"\n{result['cycles']} cycles in {result['elapsed']:.0f} s ({result['cycles'] / result['elapsed']:.0f}/s); "
        f"connect ms {summary(result['times'])}; failures {result['failures'] or 'none'}; "
        f"close codes {result['closeCodes']}"
    )
    for line in verdict["lines"]:
        print(line)
    path = write_results(
        "soak-connect-cycles",
        {
            "meta": {
                "mode": args.mode,
                "servers": len(rows[0]["serverRssKb"]),
                "cycles": args.cycles,
                "concurrency": args.concurrency,
                "devices": devices,
                "git": git_state(),
                "loadAverage": load_average(),
                "seconds": round(time.time() - started),
            },
            "samples": rows,
            "connectMs": summary(result["times"]),
            "failures": result["failures"],
            "closeCodes": result["closeCodes"],
            "verdict": verdict,
            "table": table,
        },
    )
    print(f"written {path}")


def print_row(row: dict[str, Any]) -> None:
    rss = "+".join(f"{kb / 1024:.1f}" for kb in row["serverRssKb"])
    redis = row.get("redisConnectionsOfServers", "-")
    print(
        f"[{time.strftime('%H:%M:%S')}] {row['cycles']:>6} cycles: server RSS {rss} MB, Redis conns {redis}, "
        f"connected_clients {row.get('redisConnectedClients', '-')}, DB conns {row.get('databaseConnections', '-')}",
        flush=True,
    )


def judge(rows: list[dict[str, Any]], every: int) -> dict[str, Any]:
    """First thousand vs last: memory per cycle and flat connection counts."""
    progress = [r for r in rows if r["cycles"] > 0 and not r.get("afterIdle")]
    lines: list[str] = []
    if len(progress) < 2:
        return {"stable": None, "lines": ["too few samples to judge (run more cycles than --every twice)"]}
    first, last = progress[0], rows[-1]
    middle = progress[len(progress) // 2]
    cycles = last["cycles"] - first["cycles"]
    growth_kb = sum(last["serverRssKb"]) - sum(first["serverRssKb"])
    per_cycle = growth_kb * 1024 / cycles if cycles else 0.0
    # Caches and pools warm up for a while, and the allocator moves in steps of arenas: judge the
    # second half of the run. A leak of 100 bytes per cycle is 0.5 MB over 5,000 cycles.
    late_cycles = last["cycles"] - middle["cycles"]
    late_kb = sum(last["serverRssKb"]) - sum(middle["serverRssKb"])
    late_per_cycle = late_kb * 1024 / late_cycles if late_cycles else 0.0
    memory_stable = late_kb <= 1024 or late_per_cycle < 100
    lines.append(
        f"server RSS: {sum(first['serverRssKb']) / 1024:.1f} MB after {first['cycles']} cycles, "
        f"{sum(middle['serverRssKb']) / 1024:.1f} MB after {middle['cycles']}, "
        f"{sum(last['serverRssKb']) / 1024:.1f} MB at the end: {per_cycle:+.0f} bytes/cycle overall, "
        f"{late_per_cycle:+.0f} bytes/cycle over the second half -> {'stable' if memory_stable else 'GROWING'} "
        "(stable: the second half grew under 1 MB or 100 bytes per cycle)"
    )
    stable = memory_stable
    for key, label in (
        ("redisConnectionsOfServers", "Redis connections of the servers"),
        ("redisConnectedClients", "Redis connected_clients (all clients of that Redis)"),
        ("databaseConnections", "database connections"),
        ("serverFds", "server open fds"),
    ):
        if key not in first:
            continue
        a, b = first[key], last[key]
        a_total, b_total = (sum(a), sum(b)) if isinstance(a, list) else (a, b)
        peak = max(sum(r[key]) if isinstance(r[key], list) else r[key] for r in progress)
        # Pools warm up for a while: flat means no growth over the second half of the run.
        middle = progress[len(progress) // 2][key]
        m_total = sum(middle) if isinstance(middle, list) else middle
        flat = b_total <= a_total + 2 or b_total <= m_total + 1
        if key != "redisConnectedClients":  # every client of a shared Redis: shown, not judged
            stable = stable and flat
        lines.append(
            f"{label}: {a_total} after {first['cycles']} cycles, {m_total} half way, {b_total} at the end, "
            f"peak {peak} -> {'flat' if flat else 'GROWING'}"
        )
    lines.append(f"verdict: {'stable' if stable else 'NOT stable'} (memory judged on the second half)")
    return {
        "stable": stable,
        "memoryGrowthKb": growth_kb,
        "bytesPerCycle": round(per_cycle),
        "bytesPerCycleSecondHalf": round(late_per_cycle),
        "lines": lines,
    }


if __name__ == "__main__":
    main()
