"""What one production handshake costs, counted rather than timed (the machine is shared).

Starts one production-mode daphne (PostgreSQL, Redis) with bench/counting/sitecustomize.py on its
PYTHONPATH, which counts the process's Redis round trips and commands (redis-py's send and pack)
and its SQL statements and commits. Then opens N sockets of devices never seen before one at a
time, the same devices again (each replacing nothing, its older socket closed), and N fresh
devices with 100 handshakes in flight; each socket closes at the end of its round. A first round
of N (not shown) fills the Redis pools, whose connections are opened once. Prints each
round's counts per connection (opened and closed), minus what the process did while idle for the
same time (presence flushes, the stream checks). Sequential rounds are
deterministic; the storm round shows what the handshakes in flight share.

Usage: .venv/bin/python bench/handshake_cost.py [--connections 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import SERVICE_BENCH_SETTINGS, issue_clients, start_daphne
from bench.suite import measure_storm, service_system
from tests.support.liveserver import base_env, manage
from tests.support.production import fresh_postgres_database, production_env, require_services

COUNTING = Path(__file__).resolve().parent / "counting"
SETTLE_S = 1.5  # for closes to finish and the counter file to be rewritten


def read_counts(path: Path) -> dict[str, int]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    n = args.connections
    require_services()
    directory = Path(tempfile.mkdtemp(prefix="handshake-cost-"))
    count_file = directory / "counts.json"
    with fresh_postgres_database() as database_url:
        settings = {**production_env(database_url), **SERVICE_BENCH_SETTINGS}
        env = base_env(**settings)
        manage(env, "migrate", "--noinput")
        creds = issue_clients(env, 3 * n, tag="cost")
        pythonpath = os.pathsep.join(p for p in (str(COUNTING), env.get("PYTHONPATH", "")) if p)
        server = start_daphne({**env, "PYTHONPATH": pythonpath, "HANDSHAKE_COUNT_FILE": str(count_file)}, directory)
        try:
            system = service_system([server], creds)
            time.sleep(SETTLE_S)
            rounds = [
                ("fresh devices, one at a time", 0, 1),
                ("the same devices again", 0, 1),
                ("fresh, 100 in flight", n, 100),
            ]
            rows = []
            for title, offset, concurrency in rounds:
                before, started = read_counts(count_file), time.monotonic()
                run = measure_storm(system, n, concurrency, offset=offset)
                time.sleep(SETTLE_S)
                counted, elapsed = delta(read_counts(count_file), before), time.monotonic() - started
                idle_before = read_counts(count_file)
                time.sleep(elapsed)
                idle = delta(read_counts(count_file), idle_before)
                net = {k: v - idle.get(k, 0) for k, v in counted.items()}
                rows.append((title, run, net))
            for _, _, net in rows:  # opening a pooled connection: HELLO and three CLIENT commands
                net["redis.trips, pooled connections already open"] = (
                    net.get("redis.trips", 0) - net.get("redis.HELLO", 0) - net.get("redis.CLIENT", 0)
                )
            keys = sorted({k for _, _, net in rows for k in net if net[k] > 0})
            print(f"\nproduction handshake cost, {n} connections per round (opened and closed), per connection:")
            print("| count | " + " | ".join(title for title, _, _ in rows) + " |")
            print("| --- |" + " --- |" * len(rows))
            for key in keys:
                print(f"| {key} | " + " | ".join(f"{net.get(key, 0) / n:.2f}" for _, _, net in rows) + " |")
            print("| failed handshakes | " + " | ".join(str(run["failed"]) for _, run, _ in rows) + " |")
            print(f"\nload average: {Path('/proc/loadavg').read_text().strip()}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
