"""How long simulators go without a worker when one is killed, and when one is redeployed.

Usage: .venv/bin/python bench/simulator_adoption.py [--simulators 40] [--rounds 3]

Production mode for real (a fresh PostgreSQL database, Redis, one daphne process and
two `simulator_worker` processes), with the default lease settings unless the
environment overrides them. Each simulator's user keeps a socket open; the figure is
the time from the kill (or SIGTERM) until that socket hears `running` again (for
SIGTERM: until another worker holds it). Prints a table and writes bench/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.liveserver import (
    DaphneServer,
    WorkerProcess,
    base_env,
    manage,
    recv_json,
    recv_until,
    request,
    send_json,
)
from tests.support.production import fresh_postgres_database, production_env, require_services


def holders(database_url: str) -> dict[str, str | None]:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as db:
        rows = db.execute("SELECT id::text, worker_id FROM simulator_app_simulator WHERE status = 'running'")
        return dict(rows.fetchall())


def wait_running(ws, since: float, sink: list[float]) -> None:
    recv_until(ws, "simulator_status_update", timeout=60, simulatorStatus="running")
    sink.append(time.monotonic() - since)  # list.append is atomic under the GIL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--simulators", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_services()
    directory = Path(tempfile.mkdtemp(prefix="adoption-"))
    results: dict[str, list[float]] = {"sigkill": [], "sigterm": []}
    with fresh_postgres_database() as database_url:
        # The sockets only listen here; keep the server from timing them out between rounds.
        env = base_env(
            **production_env(database_url), WS_HEARTBEAT_INTERVAL_MS="300000", WS_HEARTBEAT_TIMEOUT_MS="900000"
        )
        manage(env, "migrate", "--noinput")
        server = DaphneServer(env=env).start(directory)
        workers = [WorkerProcess(env=env).start(directory) for _ in range(2)]
        sockets = []
        try:
            for _ in range(args.simulators):
                creds = server.issue_token(f"bench-{uuid.uuid4().hex[:8]}")
                ws = server.connect(creds["token"], creds["deviceId"])
                recv_json(ws)
                send_json(ws, request("start_simulator", creds["deviceId"], "start"))
                reply, _ = recv_until(ws, "simulator_started")
                recv_until(ws, "simulator_status_update", simulatorStatus="running")
                sockets.append((reply["simulatorId"], ws))
            by_id = dict(sockets)
            for round_number in range(args.rounds):
                for kind, sig in (("sigkill", signal.SIGKILL), ("sigterm", signal.SIGTERM)):
                    held = holders(database_url)
                    victim = max(workers, key=lambda w: sum(1 for h in held.values() if h == w.worker_id))
                    affected = [sid for sid, holder in held.items() if holder == victim.worker_id]
                    killed_at = time.monotonic()
                    victim.stop(sig)
                    times: list[float] = []
                    if kind == "sigkill":
                        threads = [
                            threading.Thread(target=wait_running, args=(by_id[s], killed_at, times)) for s in affected
                        ]
                        for thread in threads:
                            thread.start()
                        for thread in threads:
                            thread.join()
                    else:
                        pending = set(affected)
                        while pending:
                            now_held = holders(database_url)
                            for sid in list(pending):
                                if now_held.get(sid) not in (None, victim.worker_id):
                                    times.append(time.monotonic() - killed_at)
                                    pending.discard(sid)
                            time.sleep(0.02)
                    results[kind].extend(times)
                    print(f"round {round_number + 1} {kind}: {len(affected)} simulators, max {max(times):.2f} s")
                    workers.remove(victim)
                    workers.append(WorkerProcess(env=env).start(directory))
                    time.sleep(float(env.get("SIMULATOR_LEASE_RENEW_MS", "2000")) / 1000 * 2)
        finally:
            for _, ws in sockets:
                ws.close()
            for process in [*workers, server]:
                process.stop()

    ttl = int(os.environ.get("SIMULATOR_LEASE_TTL_MS", "10000"))
    renew = int(os.environ.get("SIMULATOR_LEASE_RENEW_MS", "2000"))
    print(f"\nlease {ttl} ms, renew {renew} ms: documented bound for SIGKILL adoption {(ttl + renew) / 1000:.1f} s")
    print(f"{'event':<10}{'simulators':>12}{'p50 s':>9}{'max s':>9}")
    summary = {"leaseTtlMs": ttl, "leaseRenewMs": renew}
    for kind, samples in results.items():
        p50, worst = statistics.median(samples), max(samples)
        summary[kind] = {"samples": len(samples), "p50S": round(p50, 3), "maxS": round(worst, 3)}
        print(f"{kind:<10}{len(samples):>12}{p50:>9.2f}{worst:>9.2f}")
    out = Path(__file__).parent / "results" / "simulator_adoption.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
