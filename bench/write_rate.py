"""What connected traders cost the backing services, counted (issue 18): PostgreSQL writes by table
and Redis commands by name, per 1,000 traders per second, in production mode.

One daphne process and one simulator worker on a fresh PostgreSQL database and a Redis server of
this run's own (so `INFO commandstats` counts only this service), N traders from a load-generator
process (bench/loadgen.py `trade`): each connected, its simulator running, beating every
WS_HEARTBEAT_INTERVAL_MS. Two windows: `idle` (connected, beating, simulators ticking) and
`trading` (each trader also places a market order every --order-every-s). Each window's deltas of
pg_stat_user_tables (n_tup_ins + n_tup_upd + n_tup_del per table), pg_stat_database (xact_commit,
read-only transactions included) and Redis commandstats are divided by the window and scaled to
1,000 traders.

These are counts, not timings: they do not depend on how loaded the machine is (within the
window's edges: PostgreSQL 15 publishes a backend's table counters within about a second of a
busy transaction, ten of an idle one, so windows are a minute by default).

Usage:
  .venv/bin/python bench/write_rate.py [--traders 300] [--idle-s 60] [--trade-s 60] [--order-every-s 60]
  .venv/bin/python bench/suite.py --scenarios writes          # the same, from the suite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    PRODUCTION_DAPHNE_ARGS,
    SERVICE_BENCH_SETTINGS,
    Generator,
    cpu_seconds,
    git_state,
    issue_clients,
    load_average,
    markdown_table,
    rss_kb,
    write_results,
)
from tests.support.liveserver import DaphneServer, WorkerProcess, base_env, manage

Counts = dict[str, float]


def postgres_counts(database_url: str) -> Counts:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
        counts: Counts = {
            f"table:{name}": float(ins + upd + dele)
            for name, ins, upd, dele in db.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            ).fetchall()
        }
        ((commits,),) = db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchall()
        counts["transactions"] = float(commits)
    return counts


def redis_counts(redis_url: str) -> Counts:
    import redis

    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return {f"redis:{name.removeprefix('cmdstat_')}": float(entry["calls"]) for name, entry in stats.items()}


def snapshot(database_url: str, redis_url: str, pids: dict[str, int]) -> Counts:
    """The counters, and each process's CPU time (ms, so a rate of it reads as ms per second)."""
    cpu = {f"cpu ms:{name}": cpu_seconds(pid) * 1000 for name, pid in pids.items()}
    return {**postgres_counts(database_url), **redis_counts(redis_url), **cpu}


def rates(before: Counts, after: Counts, seconds: float, traders: int) -> Counts:
    """Per second per 1,000 traders, for every counter that moved."""
    return {key: round(value * 1000 / traders, 2) for key, value in per_second(before, after, seconds).items()}


def per_second(before: Counts, after: Counts, seconds: float) -> Counts:
    moved = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    return {key: round(delta / seconds, 3) for key, delta in sorted(moved.items()) if delta > 0}


def run(traders: int, idle_s: float, trade_s: float, order_every_s: float, log: Any = print) -> dict[str, Any]:
    from tests.support.faults import RedisServer
    from tests.support.production import fresh_postgres_database, production_env, require_services

    require_services()
    directory = Path(tempfile.mkdtemp(prefix="bench-writes-"))
    redis_server = RedisServer(directory).start()
    server = worker = None
    try:
        with fresh_postgres_database() as database_url:
            settings = {
                **production_env(database_url),
                **SERVICE_BENCH_SETTINGS,
                "REDIS_URL": redis_server.url,
                # As deployed: the default heartbeat, not the benchmarks' idle five minutes.
                "WS_HEARTBEAT_INTERVAL_MS": "15000",
                "WS_HEARTBEAT_TIMEOUT_MS": "45000",
            }
            env = base_env(**settings)
            manage(env, "migrate", "--noinput")
            log(f"writes: issuing {traders} device tokens")
            clients = issue_clients(env, traders, tag="writes", per_user=1)
            server = DaphneServer(env=env, args=PRODUCTION_DAPHNE_ARGS).start(directory)
            worker = WorkerProcess(env=env).start(directory)
            conns = [
                {
                    "url": f"{server.ws}/ws/session/?token={c['token']}&deviceId={c['deviceId']}",
                    "deviceId": c["deviceId"],
                    "expect": "connected",
                }
                for c in clients
            ]
            job = {
                "kind": "trade",
                "conns": conns,
                "beat_s": 15.0,
                "order_every_s": order_every_s,
                "idle_s": idle_s,
                "trade_s": trade_s,
                "concurrency": 50,
            }
            generator = Generator(job).start()
            assert server.process is not None and worker.process is not None
            pids = {"daphne": server.process.pid, "worker": worker.process.pid, "redis": redis_pid(redis_server)}
            try:
                ready = generator.read("ready", timeout=600)
                log(f"writes: {ready['open']} traders connected ({ready['failed']} failed); settling 20 s")
                time.sleep(20)  # simulators started, first checkpoints and flushes past
                start = snapshot(database_url, redis_server.url, pids)
                began = time.monotonic()
                generator.tell("go")
                progress = generator.read("progress", timeout=idle_s + 120)
                middle = snapshot(database_url, redis_server.url, pids)
                switched = time.monotonic()
                result = generator.read("result", timeout=trade_s + 300)
                end = snapshot(database_url, redis_server.url, pids)
                ended = time.monotonic()
                rss = {"daphne": rss_kb(pids["daphne"]), "worker": rss_kb(pids["worker"])}
            finally:
                generator.finish()
            open_ = ready["open"]
            windows = {
                "idle": rates(start, middle, switched - began, open_),
                "trading": rates(middle, end, ended - switched, open_),
            }
            absolute = {
                "idle": per_second(start, middle, switched - began),
                "trading": per_second(middle, end, ended - switched),
            }
            orders = result["replies"].get("order_placed", 0) + result["replies"].get("order_rejected", 0)
            return {
                "traders": open_,
                "failed": ready["failed"],
                "seconds": {"idle": round(switched - began, 1), "trading": round(ended - switched, 1)},
                "orderEveryS": order_every_s,
                "replies": result["replies"],
                "repliesAtSwitch": progress.get("replies", {}),
                "ordersAnswered": orders,
                "perThousandPerSecond": windows,
                "perSecond": absolute,
                "rssKb": rss,
                "loadAverage": load_average(),
            }
    finally:
        for process in (worker, server):
            if process is not None:
                process.stop()
        redis_server.stop()


def redis_pid(server: Any) -> int:
    assert server.process is not None
    return int(server.process.pid)


HEADERS = ["counter", "idle /s", "trading /s", "idle per 1,000 /s", "trading per 1,000 /s"]


def table_rows(out: dict[str, Any]) -> list[list[Any]]:
    """Each counter's rate in both windows, as measured and per 1,000 traders. Counters a process
    has whatever its traders (the feed, a worker's own row, Redis' bookkeeping) only read per second."""
    thousand, absolute = out["perThousandPerSecond"], out["perSecond"]
    keys = sorted(set(absolute["idle"]) | set(absolute["trading"]))
    return [
        [key, absolute["idle"].get(key, 0), absolute["trading"].get(key, 0),
         thousand["idle"].get(key, 0), thousand["trading"].get(key, 0)]
        for key in keys
    ]  # fmt: skip


def tables(out: dict[str, Any]) -> str:
    title = (
        f"{out['traders']} traders, one daphne + one worker; trading = a market order every "
        f"{out['orderEveryS']:g} s each; RSS at the end {out['rssKb']} KB"
    )
    return title + "\n\n" + markdown_table(HEADERS, table_rows(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traders", type=int, default=300)
    parser.add_argument("--idle-s", type=float, default=60)
    parser.add_argument("--trade-s", type=float, default=60)
    parser.add_argument("--order-every-s", type=float, default=60)
    args = parser.parse_args()
    out = run(args.traders, args.idle_s, args.trade_s, args.order_every_s)
    print(tables(out))
    print(json.dumps({k: v for k, v in out.items() if k not in ("perThousandPerSecond", "perSecond")}))
    path = write_results("writes", {"git": git_state(), "args": vars(args), "result": out})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
