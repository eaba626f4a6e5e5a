"""Shared pieces of the benchmarks: statistics, process probes (RSS, CPU), credentials in bulk,
the production-like daphne command line, the load-generator subprocess, and result output.

The load generator always runs in its own process (bench/loadgen.py), separate from the
servers it measures; the orchestrator (bench/suite.py, bench/soak_connect_cycles.py) only
starts processes, hands out work, samples them and prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.liveserver import DaphneServer, base_env, manage  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# As deploy/systemd and deploy/Procfile start daphne (less --proxy-headers: no proxy in front here).
PRODUCTION_DAPHNE_ARGS = ("-v", "0", "--websocket-max-message-size", "131072", "--websocket-max-frame-size", "131072")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- statistics -----------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(samples: list[float]) -> dict[str, float]:
    """p50 / p99 / max of a list of milliseconds, rounded for the JSON."""
    if not samples:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max": round(ordered[-1], 3),
    }


# --- processes --------------------------------------------------------------------


def raise_nofile_limit() -> int:
    """Lift this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


MACHINE = -1  # a pseudo-pid for CpuSampler: every core of the machine


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included), or of the whole machine (MACHINE)."""
    if pid == MACHINE:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: busy is all but idle and iowait
        return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuSampler:
    """Samples the CPU time of some processes every 50 ms in a thread, so the CPU share of any
    window reported afterwards (by the load generator, in epoch seconds) can be computed."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.pids, self.interval = list(pids), interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._total()))
            self._stop.wait(self.interval)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self._total()))

    def _at(self, when: float) -> float:
        before = [s for s in self.samples if s[0] <= when]
        after = [s for s in self.samples if s[0] >= when]
        if not before:
            return after[0][1] if after else 0.0
        if not after:
            return before[-1][1]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (when - t0) / (t1 - t0)

    def cpu(self, begin: float, end: float) -> float:
        """CPU seconds used within [begin, end] (epoch seconds), interpolated."""
        return self._at(end) - self._at(begin)

    def share(self, begin: float, end: float) -> float:
        return round(self.cpu(begin, end) / (end - begin), 3) if end > begin else 0.0


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --- the service ------------------------------------------------------------------------

CREATE_CLIENTS = """
import json, uuid
from datetime import timedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from sessions_app.models import AccessToken, Device
from sessions_app.tokens import hash_access_token, new_access_token
users = get_user_model()
expiry = timezone.now() + timedelta(seconds=settings.AUTH_TOKEN_TTL_S)
with transaction.atomic():
    owners = users.objects.bulk_create(
        [users(username=f"{tag}-u{{n}}", password=make_password(None)) for n in range({users})], batch_size=2000
    )
    devices = Device.objects.bulk_create(
        [Device(user=owners[n % len(owners)], device_id=f"dev-{{uuid.uuid4().hex}}") for n in range({count})],
        batch_size=2000,
    )
    raws = [new_access_token() for _ in devices]
    AccessToken.objects.bulk_create(
        [
            AccessToken(key_hash=hash_access_token(raw), key_prefix=raw[:8], user=d.user, device=d, expires_at=expiry)
            for raw, d in zip(raws, devices)
        ],
        batch_size=2000,
    )
    out = [
        {{"token": raw, "deviceId": d.device_id, "user": n % len(owners)}}
        for n, (raw, d) in enumerate(zip(raws, devices))
    ]
    if {password!r}:
        login = users.objects.create_user(username="{tag}-login", password={password!r})
print(json.dumps(out))
"""


def issue_clients(env: dict[str, str], count: int, *, tag: str, per_user: int = 100, password: str = "") -> list[dict]:
    """`count` devices with an access token each, spread over users of `per_user` devices (the
    service allows one connection per device). The rows `manage.py issue_token` writes (a device
    and a token hashed as sessions_app.tokens does), inserted in batches in one transaction: one
    service call per token takes a minute for 60,000 on PostgreSQL, and the login endpoint pays a
    password hash per token."""
    users = max(1, -(-count // per_user))
    script = CREATE_CLIENTS.format(count=count, users=users, tag=tag, password=password)
    return json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])


def embedded_env(directory: Path, name: str, **overrides: str) -> dict[str, str]:
    """The embedded default (SQLite, in-memory layer, simulators and the feed in the daphne process)."""
    # Overrides may replace a bench setting (say, the heartbeat interval).
    database = f"sqlite:///{directory / f'{name}.sqlite3'}"
    return base_env(**{"DATABASE_URL": database, **SERVICE_BENCH_SETTINGS, **overrides})


# What every benchmark run of the service changes, and why.
SERVICE_BENCH_SETTINGS = {
    # As a deployment runs it: DEBUG keeps every SQL query of a database thread in memory (up to 9,000).
    "DEBUG": "false",
    # The load generator beats as fast as it can (closed loop); the per-connection limit (20/s) would refuse it.
    "WS_RATE_LIMIT_PER_S": "1000000",
    "WS_RATE_LIMIT_BURST": "1000000",
    # Idle connections (memory, fan-out) send nothing for minutes.
    "WS_HEARTBEAT_TIMEOUT_MS": "900000",
    "WS_HEARTBEAT_INTERVAL_MS": "300000",
    # The HTTP login sample logs in as one user, many times.
    "LOGIN_THROTTLE_RATE": "1000000/min",
    "LOGIN_USER_THROTTLE_RATE": "1000000/min",
    "SIMULATOR_WORKER_CAPACITY": "5000",
    # Every benchmark socket comes from 127.0.0.1, some hundreds per user: limits high, but still counted.
    "WS_MAX_CONNECTIONS_PER_IP": "1000000",
    "WS_MAX_CONNECTIONS_PER_USER": "1000000",
}


def start_daphne(env: dict[str, str], directory: Path, app: str | None = None) -> DaphneServer:
    kwargs: dict[str, Any] = {"env": env, "args": PRODUCTION_DAPHNE_ARGS}
    if app:
        kwargs["app"] = app
    return DaphneServer(**kwargs).start(directory)


def scrape_metric(http: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    import urllib.request

    with urllib.request.urlopen(f"{http}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = f"{name}{{{labels}}}" if labels else name
    total = 0.0
    for line in text.splitlines():
        if line.startswith(wanted + " ") or (not labels and line.startswith(name + "{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- the load generator ---------------------------------------------------------------


@dataclass
class Generator:
    """A bench/loadgen.py process: given a job on stdin, it opens its connections, says `ready`,
    waits for `go`, measures, and prints one `result` line (JSON lines both ways)."""

    job: dict[str, Any]
    process: subprocess.Popen | None = None
    lines: list[dict] = field(default_factory=list)

    def start(self) -> Generator:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("loadgen.py"))],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(self.job) + "\n")
        self.process.stdin.flush()
        return self

    def read(self, event: str | tuple[str, ...], timeout: float = 900) -> dict:
        """Block until the generator prints a line with this event, or one of these (fails on `error` or exit)."""
        events = (event,) if isinstance(event, str) else event
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"load generator: no {event!r} within {timeout} s")
                if not sel.select(min(remaining, 1.0)):
                    if self.process.poll() is not None:
                        raise RuntimeError(f"load generator exited with {self.process.returncode} before {event!r}")
                    continue
                line = self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"load generator exited with {self.process.wait()} before {event!r}")
                message = json.loads(line)
                self.lines.append(message)
                if message.get("event") == "error":
                    raise RuntimeError(f"load generator failed: {message.get('error')}")
                if message.get("event") in events:
                    return message

    def tell(self, word: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 120) -> None:
        assert self.process is not None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_generators(
    jobs: list[dict[str, Any]],
    *,
    watch: dict[str, list[int]] | None = None,
    between: Any = None,
    ready_timeout: float = 900,
) -> tuple[list[dict], dict]:
    """Start one generator per job, wait until all are ready, then start them together and
    collect their results, with the CPU share (cores) of each watched group of processes during
    the measuring window the generators report (`window`, epoch seconds) in info["cpu"][group].
    `between(ready_lines)`, if given, runs after every generator is ready and before `go`; its
    answer is returned as info["between"]."""
    generators = [Generator(job).start() for job in jobs]
    watch = {**(watch or {}), "machine": [MACHINE]}
    samplers = {name: CpuSampler(pids) for name, pids in watch.items()}
    try:
        ready = [g.read("ready", timeout=ready_timeout) for g in generators]
        extra = between(ready) if between is not None else None
        with contextlib.ExitStack() as stack:
            for sampler in samplers.values():
                stack.enter_context(sampler)
            for g in generators:
                g.tell("go")
            results = [g.read("result") for g in generators]
        windows = [r["window"] for r in results if r.get("window")]
        info: dict[str, Any] = {"ready": ready, "between": extra, "cpu": {}, "cpuSeconds": {}}
        if windows:
            begin, end = min(w[0] for w in windows), max(w[1] for w in windows)
            for name, sampler in samplers.items():
                info["cpu"][name] = sampler.share(begin, end)
                info["cpuSeconds"][name] = sampler.cpu(begin, end)
            # Everything else the machine did in the window (another user's work, Redis, ...), in cores.
            ours = sum(r.get("generatorCpu", 0) for r in results) + info["cpu"].get("server", 0)
            info["cpu"]["others"] = round(max(0.0, info["cpu"]["machine"] - ours), 3)
        return results, info
    finally:
        for g in generators:
            if g.process is not None and g.process.poll() is None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    g.tell("stop")
            g.finish()


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


# --- output ----------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def write_results(prefix: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    out.append("| " + " | ".join("-" * w for w in widths) + " |")
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join(out)
