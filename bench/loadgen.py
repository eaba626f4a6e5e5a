"""The load generator of the benchmarks: a process of its own, driven over stdin/stdout.

It reads one job (a JSON line) on stdin, opens the job's WebSocket connections (asyncio and
the `websockets` client, no compression), prints `{"event": "ready", ...}`, waits for `go`
on stdin, measures, prints `{"event": "result", ...}` and exits. Job kinds:

- storm: nothing opened before `go`; then every connection connects at once (at most
  `concurrency` handshakes in flight) and each is timed to its first message (`connected`).
- heartbeat: closed-loop heartbeats on every connection; round trips timed after `warmup`.
- fanout: every connection listens; ready once each has had its first tick; then each
  `exchange_data` is timed from its `timestamp` to its arrival and its `seq` checked.
- hold: idle connections; on `go` they are closed (the orchestrator measures memory between).
- cycles: `concurrency` loops of connect, wait for `connected`, close; a `progress` line every
  `every` cycles.
- fleet: clients that stay, as the shipped ConnectionManager behaves: each follows its session
  stream and, whenever its socket ends, comes back after `shutdown.reconnectAfterMs`, an error's
  `retryAfterMs` or a full-jitter backoff, and sends `reconnect` with its stream position. Ready
  (with every client's session id) once all are connected; after `go`, a `progress` line a second;
  on `finish` each client's outages, refusals, retries and the pushes it saw.
- trade: traders as the console keeps them: each connects, starts its simulator (`start_simulator`
  true), beats every `beat_s` and reads everything pushed. After `go`: `idle_s` of only that, a
  `progress` line (`phase: trading`), then `trade_s` in which each also places a market order every
  `order_every_s` (a random phase each); replies counted by type.
- idle: idle traders (the capacity scenario): each connection, once open, beats every `beat_s`, the
  beats of every generator's connections spread evenly over the interval (`slot` of `slots`
  generators); ready once all handshakes ended (with their times) or, past `connectS`, with those
  open by then; after `go`, the heartbeat round trips of the beats sent within `seconds`, the beats
  left unanswered and the sockets the server closed.

A job's `source`, if given, is the local address its sockets dial from (one loopback address per
generator, so no address runs out of ephemeral ports).

Each connection spec is {"url": ..., "deviceId": ..., "expect": "connected" | null}.
Not imported by anything: run by bench/common.Generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import resource
import sys
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

SEQ = re.compile(r'"seq":\s*(\d+)')
TIMESTAMP = re.compile(r'"timestamp":\s*(\d+)')
HEARTBEAT = (
    '{"type":"heartbeat","timestamp":%d,"deviceId":"%s","connectionQuality":"good",'
    '"sessionStatus":"active","simulatorStatus":"stopped"}'
)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Stdin:
    """Lines from the orchestrator, read from the raw descriptor without blocking the event loop."""

    def __init__(self, pending: bytes = b"") -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.buffer = b""
        self._feed(pending)
        asyncio.get_running_loop().add_reader(0, self._read)

    def _feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.queue.put_nowait(line.decode().strip())

    def _read(self) -> None:
        data = os.read(0, 65536)
        if not data:
            asyncio.get_running_loop().remove_reader(0)
            self.queue.put_nowait("stop")
        self._feed(data)

    async def wait(self, word: str) -> str:
        while True:
            line = await self.queue.get()
            if line in (word, "stop"):
                return line


def read_job() -> tuple[dict, bytes]:
    """The first line on stdin, and whatever came after it."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            raise SystemExit("no job on stdin")
        data += chunk
    line, rest = data.split(b"\n", 1)
    return json.loads(line), rest


def is_tick(frame: str) -> bool:
    head = frame[:32]
    return '"exchange_data"' in head


NOT_OPEN_IN_TIME = "not open within the job's connect deadline"
BUSY_RETRIES = 10  # server_busy refusals one connection waits out (its retryAfterMs) before failing


async def open_connection(spec: dict, gate: asyncio.Semaphore, source: str | None = None) -> tuple[Any, float]:
    """Open one connection (and wait for `connected` when expected); returns it and the ms it took,
    the wait for a place in `gate` and retry slots included: a `server_busy` refusal is waited out as
    the ConnectionManager does. The last attempt alone, from its place in `gate`, is `.handshake_ms`."""
    started = time.perf_counter()
    bind = {"local_addr": (source, 0)} if source else {}
    for _ in range(BUSY_RETRIES + 1):
        async with gate:
            placed = time.perf_counter()
            ws = await websockets.connect(
                spec["url"],
                max_size=None,
                compression=None,
                ping_interval=None,
                open_timeout=120,
                close_timeout=10,
                **bind,
            )
            first = await asyncio.wait_for(ws.recv(), 60) if spec.get("expect") else ""
            if not spec.get("expect") or f'"{spec["expect"]}"' in first[:40]:
                ws.handshake_ms = (time.perf_counter() - placed) * 1000
                return ws, (time.perf_counter() - started) * 1000
            await ws.close()
            refusal = json.loads(first) if first.startswith("{") else {}
        if refusal.get("code") != "server_busy" or refusal.get("retryAfterMs") is None:
            raise RuntimeError(f"expected {spec['expect']}, got {first[:200]}")
        await asyncio.sleep(refusal["retryAfterMs"] / 1000)
    raise RuntimeError(f"still server_busy after {BUSY_RETRIES} retry slots: {first[:200]}")


async def open_all(conns: list[dict], concurrency: int) -> tuple[list[Any], list[float], list[str]]:
    """Open every connection; the sockets opened (each with its spec as `.spec`), their times, the failures."""
    gate = asyncio.Semaphore(concurrency)
    outcomes = await asyncio.gather(*(open_connection(c, gate) for c in conns), return_exceptions=True)
    sockets, times, failures = [], [], []
    for spec, outcome in zip(conns, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failures.append(f"{type(outcome).__name__}: {outcome}"[:200])
        else:
            outcome[0].spec = spec
            sockets.append(outcome[0])
            times.append(outcome[1])
    return sockets, times, failures


async def open_and_read(
    conns: list[dict],
    concurrency: int,
    read: Callable[[int, Any], Awaitable[None]],
    source: str | None = None,
    give_up_at: float = float("inf"),
) -> tuple[list[Any], dict[int, str], list[asyncio.Task[None]]]:
    """Open every connection and run `read(index, socket)` on each from the moment it opens: an
    unread socket stops reading at websockets' max_queue, stops answering daphne's pings, and is
    dropped (1006) within a minute. Returns once every handshake ended, or at `give_up_at`
    (monotonic) with those not open by then abandoned (failed as NOT_OPEN_IN_TIME): the sockets,
    the failures by index, and the reading tasks (cancel them when done)."""
    gate = asyncio.Semaphore(concurrency)
    sockets: list[Any] = []
    failures: dict[int, str] = {}
    opened: set[int] = set()

    async def one(index: int, spec: dict) -> None:
        try:
            ws, _ = await open_connection(spec, gate, source)
        except Exception as error:
            failures[index] = f"{type(error).__name__}: {error}"[:200]
            return
        sockets.append(ws)
        opened.add(index)
        await read(index, ws)

    tasks = [asyncio.ensure_future(one(i, spec)) for i, spec in enumerate(conns)]
    while len(sockets) + len(failures) < len(conns):
        if time.monotonic() > give_up_at:
            for index, task in enumerate(tasks):
                if index not in opened and index not in failures:
                    task.cancel()
                    failures[index] = NOT_OPEN_IN_TIME
            break
        await asyncio.sleep(0.1)
    return sockets, failures, tasks


def check_failures(failures: list[str], total: int, fraction: float) -> None:
    """A few failed handshakes out of thousands are reported, not fatal; more are."""
    if len(failures) > max(1, total * fraction):
        raise RuntimeError(f"{len(failures)} of {total} connections failed, first: {failures[0]}")


async def close_all(sockets: list[Any]) -> None:
    gate = asyncio.Semaphore(200)

    async def close(ws: Any) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 10)

    await asyncio.gather(*(close(ws) for ws in sockets))


# --- jobs ---------------------------------------------------------------------------------


async def storm(job: dict, stdin: Stdin) -> dict:
    emit("ready")
    if await stdin.wait("go") == "stop":
        return {}
    cpu, started, began = cpu_now(), time.perf_counter(), time.time()
    sockets, times, failures = await open_all(job["conns"], job.get("concurrency", 100))
    elapsed = time.perf_counter() - started
    window = [began, time.time()]
    cpu = cpu_now() - cpu
    await close_all(sockets)
    return {
        "times": [round(t, 3) for t in times],
        "failures": failures,
        "elapsed": elapsed,
        "window": window,
        "generatorCpu": cpu / elapsed,
    }


async def heartbeat(job: dict, stdin: Stdin) -> dict:
    sockets, _, failures = await open_all(job["conns"], job.get("concurrency", 100))
    check_failures(failures, len(job["conns"]), job.get("maxFailedFraction", 0.01))
    emit("ready", open=len(sockets), failed=len(failures), failures=failures[:3])
    if await stdin.wait("go") == "stop":
        return {}
    warmup, seconds = job.get("warmup", 1.0), job["seconds"]
    begin = time.perf_counter() + warmup
    end = begin + seconds
    rtts: list[float] = []
    unexpected = Counter()

    async def beat(ws: Any, device_id: str) -> None:
        while True:
            sent = time.perf_counter()
            if sent >= end:
                return
            await ws.send(HEARTBEAT % (time.time() * 1000, device_id))
            while True:
                frame = await ws.recv()
                if "heartbeat_ack" in frame[:32]:
                    break
                unexpected[frame[:40]] += 1
            if sent >= begin:
                rtts.append((time.perf_counter() - sent) * 1000)

    epoch = time.time() - time.perf_counter()
    cpu_marks: dict[str, float] = {}

    async def mark(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        cpu_marks[name] = cpu_now()

    markers = [asyncio.ensure_future(mark("begin", begin)), asyncio.ensure_future(mark("end", end))]
    await asyncio.gather(*(beat(ws, ws.spec["deviceId"]) for ws in sockets))
    await asyncio.gather(*markers)
    await close_all(sockets)
    return {
        "roundTrips": len(rtts),
        "seconds": seconds,
        "window": [epoch + begin, epoch + end],
        "rtts": [round(r, 3) for r in rtts],
        "unexpected": dict(unexpected.most_common(5)),
        "generatorCpu": (cpu_marks["end"] - cpu_marks["begin"]) / seconds,
    }


async def fanout(job: dict, stdin: Stdin) -> dict:
    conns = job["conns"]
    first_tick = [asyncio.Event() for _ in conns]
    window = {"begin": float("inf"), "end": float("inf")}
    last_seq = [0] * len(conns)
    latencies: list[float] = []
    reached: Counter[int] = Counter()
    state = {"gaps": 0, "stale": 0, "closed": 0}

    async def listen(index: int, ws: Any) -> None:
        try:
            async for frame in ws:
                if not is_tick(frame):
                    continue
                arrived = time.time() * 1000
                seq = int(SEQ.search(frame, len(frame) - 80 if len(frame) > 80 else 0).group(1))
                previous = last_seq[index]
                now = time.perf_counter()
                in_window = window["begin"] <= now < window["end"]
                if previous:
                    if seq <= previous:
                        state["stale"] += 1
                    elif in_window:
                        state["gaps"] += seq - previous - 1
                last_seq[index] = max(previous, seq)
                first_tick[index].set()
                if in_window:
                    latencies.append(arrived - int(TIMESTAMP.search(frame).group(1)))
                    reached[seq] += 1
        except websockets.ConnectionClosed:
            state["closed"] += 1
            first_tick[index].set()  # not waited for any more

    sockets, failed, tasks = await open_and_read(conns, job.get("concurrency", 50), listen)
    for index in failed:
        first_tick[index].set()  # not waited for
    failures = list(failed.values())
    check_failures(failures, len(conns), job.get("maxFailedFraction", 0.01))
    # Ready once every open socket has had a tick, or, past readyTimeout, 99% of them.
    deadline = time.monotonic() + job.get("readyTimeout", 60)
    while True:
        waiting = sum(not e.is_set() for e in first_tick)
        if waiting == 0 or (time.monotonic() > deadline and waiting <= len(conns) // 100):
            break
        if time.monotonic() > deadline + 120:
            raise RuntimeError(f"{waiting} of {len(conns)} connections never got a tick")
        await asyncio.sleep(0.2)
    emit("ready", open=len(sockets), failed=len(failures), failures=failures[:3], withoutTick=waiting)
    if await stdin.wait("go") == "stop":
        return {}
    seconds = job["seconds"]
    await asyncio.sleep(job.get("warmup", 1.0))
    closed_before = state["closed"]
    cpu = cpu_now()
    began = time.time()
    window["begin"] = time.perf_counter()
    window["end"] = window["begin"] + seconds
    await asyncio.sleep(seconds)
    cpu = cpu_now() - cpu
    ended = time.time()
    # Give the last tick of the window time to arrive everywhere, then judge who lags behind.
    await asyncio.sleep(job.get("settle", 0.5))
    newest = max(last_seq)
    lagging = sum(1 for s in last_seq if s < newest - 2)
    closed = state["closed"]
    for task in tasks:
        task.cancel()
    await close_all(sockets)
    ticks = sorted(reached)
    full = ticks[1:-1] or ticks  # the window cuts the first and last tick
    return {
        "connections": len(sockets),
        "deliveries": len(latencies),
        "seconds": seconds,
        "window": [began, ended],
        "latencies": [round(x, 2) for x in latencies],
        "ticks": len(ticks),
        "reachedMin": min((reached[s] for s in full), default=0),
        "reachedMedian": sorted(reached[s] for s in full)[len(full) // 2] if full else 0,
        "gaps": state["gaps"],
        "stale": state["stale"],
        "lagging": lagging,
        "closedBefore": closed_before,
        "closedDuring": closed - closed_before,
        "withoutTick": waiting,
        "generatorCpu": cpu / seconds,
    }


async def hold(job: dict, stdin: Stdin) -> dict:
    # Read whatever the server pushes (snapshots, pings), from the start.
    sockets, failed, tasks = await open_and_read(
        job["conns"], job.get("concurrency", 100), lambda _index, ws: _drain(ws)
    )
    failures = list(failed.values())
    emit("ready", open=len(sockets), failures=failures[:5], failed=len(failures))
    await stdin.wait("go")
    for task in tasks:
        task.cancel()
    await close_all(sockets)
    return {"open": len(sockets), "failed": len(failures)}


async def _drain(ws: Any) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def cycles(job: dict, stdin: Stdin) -> dict:
    conns, total, every = job["conns"], job["cycles"], job.get("every", 1000)
    concurrency = job.get("concurrency", 20)
    emit("ready")
    if await stdin.wait("go") == "stop":
        return {}
    done = {"n": 0, "next": 0}
    times: list[float] = []
    failures: Counter[str] = Counter()
    close_codes: Counter[str] = Counter()
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    lock = asyncio.Lock()

    async def cycler(slot: int) -> None:
        mine = conns[slot::concurrency]
        turn = 0
        while True:
            async with lock:
                if done["next"] >= total:
                    return
                done["next"] += 1
            spec = mine[turn % len(mine)]
            turn += 1
            try:
                ws, took = await open_connection(spec, gate)
                times.append(took)
                await ws.close()
                close_codes[str(ws.close_code)] += 1
            except Exception as error:
                failures[f"{type(error).__name__}: {error}"[:120]] += 1
            done["n"] += 1
            if done["n"] % every == 0:
                recent = times[-every:]
                emit(
                    "progress",
                    cycles=done["n"],
                    elapsed=round(time.perf_counter() - started, 2),
                    connectP50=round(sorted(recent)[len(recent) // 2], 2) if recent else None,
                    failures=sum(failures.values()),
                )

    await asyncio.gather(*(cycler(slot) for slot in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "cycles": done["n"],
        "elapsed": elapsed,
        "times": [round(t, 2) for t in times],
        "failures": dict(failures.most_common(10)),
        "closeCodes": dict(close_codes),
    }


class FleetClient:
    """One client of the fleet job (see the module docstring)."""

    def __init__(self, spec: dict, backoff_cap_s: float) -> None:
        self.spec = spec
        self.backoff_cap_s = backoff_cap_s
        self.session_id: str | None = None
        self.session_token: str | None = None
        self.epoch: str | None = None
        self.start_seq = 0  # the stream position of the first `connected`
        self.seen: set[int] = set()
        self.duplicates = 0
        self.epoch_changes = 0
        self.connected_once = asyncio.Event()
        self.down_at: float | None = None  # when the socket ended, until recovered
        self.outages: list[float] = []  # seconds from the socket's end to `reconnect_result.recovered`
        self.recovered_at: list[float] = []
        self.unrecovered = 0
        self.hints: list[int] = []  # shutdown.reconnectAfterMs
        self.busy: list[int] = []  # server_busy retryAfterMs
        self.refused: Counter[str] = Counter()  # other handshake errors, by code
        self.failed_connects = 0  # no WebSocket at all (a proxy's 502, a refused TCP connection)
        self.failure_kinds: Counter[str] = Counter()
        self.latencies: list[float] = []  # ms from a live push's timestamp to its arrival
        self.close_codes: Counter[str] = Counter()
        self.resume_retries = 0  # `reconnect` requests refused (then sent again, or replaced by a resync)
        self.ws: Any = None

    def backoff(self, attempt: int) -> float:
        return random.random() * min(self.backoff_cap_s, 0.5 * 2**attempt)

    def contiguous(self) -> int:
        """The last push applied with none missing before it (what `reconnect` reports)."""
        last = self.start_seq
        while last + 1 in self.seen:
            last += 1
        return last

    def note(self, message: dict) -> None:
        seq = message.get("sessionSeq")
        if seq is not None and message.get("type") not in ("connected", "reconnect_result", "session_resync"):
            if message.get("sessionEpoch") != self.epoch:
                self.epoch_changes += 1
            elif seq in self.seen or seq <= self.start_seq:
                self.duplicates += 1
            else:
                self.seen.add(seq)
                if self.down_at is None and "timestamp" in message:  # live, not replayed after a drop
                    self.latencies.append(time.time() * 1000 - message["timestamp"])

    def position(self, kind: str, request_id: str) -> dict:
        message = {"type": kind, "requestId": request_id, "timestamp": int(time.time() * 1000)}
        if kind == "reconnect":
            message |= {"deviceId": self.spec["deviceId"], "sessionToken": self.session_token}
        return message | {"lastSessionSeq": self.contiguous(), "sessionEpoch": self.epoch}

    async def resume(self, ws: Any, after_s: float) -> None:
        if after_s:
            await asyncio.sleep(after_s)
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps(self.position("reconnect", "rc")))

    async def run(self, gate: asyncio.Semaphore) -> None:
        attempt = 0
        pending: list[asyncio.Future] = []
        while True:
            delay: float | None = None
            try:
                # Only the first connects are paced (the storm that fills the fleet); coming back is not.
                async with gate if not self.connected_once.is_set() else contextlib.nullcontext():
                    ws = await websockets.connect(
                        self.spec["url"],
                        max_size=None,
                        compression=None,
                        ping_interval=None,
                        open_timeout=60,
                        close_timeout=5,
                    )
            except Exception as error:
                self.failed_connects += 1
                self.failure_kinds[f"{type(error).__name__}: {error}"[:80]] += 1
                await asyncio.sleep(self.backoff(attempt))
                attempt += 1
                continue
            self.ws = ws
            try:
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if first.get("type") == "error":
                    if first.get("retryAfterMs") is not None:
                        self.busy.append(first["retryAfterMs"])
                        delay = first["retryAfterMs"] / 1000
                    else:
                        self.refused[first.get("code", "?")] += 1
                    raise websockets.ConnectionClosedOK(None, None)
                attempt = 0
                if self.session_token is None:
                    self.session_id, self.session_token = first["sessionId"], first["sessionToken"]
                    self.epoch, self.start_seq = first["sessionEpoch"], first["sessionSeq"]
                    self.connected_once.set()
                else:
                    await self.resume(ws, 0)
                resumes = 0
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "error" and message.get("requestId") == "rc":
                        # As the ConnectionManager: a busy server's refusal is tried again on this
                        # socket (retryAfterMs or the backoff), up to five times; then a resync.
                        resumes += 1
                        self.resume_retries += 1
                        if message.get("code") in ("service_unavailable", "server_busy") and resumes < 5:
                            hinted = message.get("retryAfterMs")
                            wait = hinted / 1000 if hinted is not None else self.backoff(resumes - 1)
                            pending.append(asyncio.ensure_future(self.resume(ws, wait)))
                        else:
                            await ws.send(json.dumps(self.position("request_resync", "rs")))
                    elif kind == "session_resync" and message.get("requestId") == "rs":
                        if self.down_at is not None:
                            self.outages.append(time.monotonic() - self.down_at)
                            self.recovered_at.append(time.time())
                            self.down_at = None
                        if not message.get("recovered"):
                            self.unrecovered += 1
                    elif kind == "reconnect_result":
                        if message.get("recovered") and self.down_at is not None:
                            self.outages.append(time.monotonic() - self.down_at)
                            self.recovered_at.append(time.time())
                            self.down_at = None
                        elif not message.get("recovered"):
                            self.unrecovered += 1
                    elif kind == "shutdown":
                        self.hints.append(message["reconnectAfterMs"])
                        delay = message["reconnectAfterMs"] / 1000
                    else:
                        self.note(message)
            except (TimeoutError, websockets.ConnectionClosed, OSError):
                pass
            finally:
                for task in pending:
                    task.cancel()
                pending.clear()
                self.close_codes[str(ws.close_code)] += 1
                with contextlib.suppress(Exception):
                    await ws.close()
                self.ws = None
            if self.down_at is None and self.connected_once.is_set():
                self.down_at = time.monotonic()
            await asyncio.sleep(delay if delay is not None else self.backoff(attempt))
            attempt += 1

    def report(self) -> dict:
        return {
            "sessionId": self.session_id,
            "startSeq": self.start_seq,
            "seen": sorted(self.seen),
            "duplicates": self.duplicates,
            "epochChanges": self.epoch_changes,
            "outages": [round(o, 3) for o in self.outages],
            "recoveredAt": self.recovered_at,
            "stillDown": self.down_at is not None,
            "unrecovered": self.unrecovered,
            "hints": self.hints,
            "busy": self.busy,
            "refused": dict(self.refused),
            "failedConnects": self.failed_connects,
            "failureKinds": dict(self.failure_kinds),
            "latencies": [round(x, 1) for x in self.latencies],
            "closeCodes": dict(self.close_codes),
            "resumeRetries": self.resume_retries,
        }


async def fleet(job: dict, stdin: Stdin) -> dict:
    clients = [FleetClient(spec, job.get("backoffCapS", 30.0)) for spec in job["conns"]]
    gate = asyncio.Semaphore(job.get("concurrency", 200))
    tasks = [asyncio.ensure_future(client.run(gate)) for client in clients]
    waiting = [asyncio.ensure_future(c.connected_once.wait()) for c in clients]
    _, pending = await asyncio.wait(waiting, timeout=job.get("connectTimeoutS", 300))
    for task in pending:
        task.cancel()
    emit("ready", sessions=[c.session_id for c in clients if c.session_id], missing=len(pending))
    if await stdin.wait("go") == "stop":
        return {}
    began, cpu = time.time(), cpu_now()

    async def progress() -> None:
        last_cpu, last_at = cpu_now(), time.monotonic()
        while True:
            await asyncio.sleep(1)
            down = sum(1 for c in clients if c.down_at is not None or c.ws is None)
            now_cpu, now_at = cpu_now(), time.monotonic()
            busy = round((now_cpu - last_cpu) / (now_at - last_at), 2)
            last_cpu, last_at = now_cpu, now_at
            emit("progress", down=down, at=time.time(), generatorCpu=busy)

    reporter = asyncio.ensure_future(progress())
    await stdin.wait("finish")
    reporter.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.time() - began
    return {
        "window": [began, time.time()],
        "generatorCpu": round((cpu_now() - cpu) / elapsed, 3),
        "clients": [c.report() for c in clients],
    }


JOBS = {"fleet": fleet, "storm": storm, "heartbeat": heartbeat, "fanout": fanout, "hold": hold, "cycles": cycles}


TRADE_SYMBOLS = ("AAPL", "MSFT", "NVDA")


async def trade(job: dict, stdin: Stdin) -> dict:
    replies: Counter[str] = Counter()
    beat_s, order_every_s = job["beat_s"], job["order_every_s"]
    trading = asyncio.Event()
    stopping = asyncio.Event()

    async def trader(index: int, ws: Any) -> None:
        device = job["conns"][index]["deviceId"]
        reader = asyncio.ensure_future(_count(ws, replies))
        try:
            if job.get("start_simulator", True):
                await ws.send(
                    json.dumps({"type": "start_simulator", "requestId": "s", "timestamp": 1, "deviceId": device})
                )
            next_beat = time.monotonic() + random.random() * beat_s
            next_order = float("inf")
            n = 0
            while not stopping.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    await ws.send(HEARTBEAT % (int(time.time() * 1000), device))
                    next_beat += beat_s
                if trading.is_set() and next_order == float("inf"):
                    next_order = now + random.random() * order_every_s  # a phase of its own, from the switch
                # A buy, then a sell of it an interval later (filled by then): positions stay flat.
                if now >= next_order:
                    n += 1
                    order = {"type": "place_order", "requestId": f"o{n}", "timestamp": 1, "deviceId": device,
                             "symbol": TRADE_SYMBOLS[index % 3], "side": "buy" if n % 2 else "sell",
                             "orderType": "market", "quantity": 1}  # fmt: skip
                    await ws.send(json.dumps(order))
                    next_order += order_every_s
                await asyncio.sleep(max(0.0, min(next_beat, next_order, now + 1.0) - time.monotonic()) + 0.001)
        except websockets.ConnectionClosed:
            replies["closed"] += 1
        finally:
            reader.cancel()

    sockets, failed, tasks = await open_and_read(job["conns"], job.get("concurrency", 50), trader)
    emit("ready", open=len(sockets), failures=list(failed.values())[:5], failed=len(failed))
    await stdin.wait("go")
    started = time.time()
    await asyncio.sleep(job["idle_s"])
    trading.set()
    emit("progress", phase="trading", at=time.time(), replies=dict(replies))
    await asyncio.sleep(job["trade_s"])
    stopping.set()
    ended = time.time()
    for task in tasks:
        task.cancel()
    await close_all(sockets)
    return {"open": len(sockets), "failed": len(failed), "replies": dict(replies), "window": [started, ended]}


async def _count(ws: Any, replies: Counter[str]) -> None:
    try:
        async for frame in ws:
            found = re.search(r'"type":\s*"([a-z_]+)"', frame[:80])
            replies[found.group(1) if found else "?"] += 1
    except websockets.ConnectionClosed:
        pass


JOBS["trade"] = trade


async def idle(job: dict, stdin: Stdin) -> dict:
    conns, beat_s = job["conns"], job["beat_s"]
    count = len(conns)
    slot, slots = job.get("slot", 0), job.get("slots", 1)
    sent = [0.0] * count  # perf_counter of each connection's beat awaiting its ack (0: none)
    sent_in_window = [False] * count
    window = {"begin": float("inf"), "end": float("inf")}
    rtts: list[float] = []
    state = Counter()
    unexpected: Counter[str] = Counter()
    closed: Counter[str] = Counter()

    async def beats(index: int, ws: Any) -> None:
        # Slots on the wall clock, so every generator's connections share one interval, evenly.
        phase = (index + slot / slots) * beat_s / count
        device = conns[index]["deviceId"]
        now = time.time()
        at = now - (now - phase) % beat_s + beat_s
        while True:
            await asyncio.sleep(max(0.0, at - time.time()))
            at += beat_s
            if sent[index]:
                state["overtaken"] += 1  # the previous beat's ack never came
            sent[index] = time.perf_counter()
            sent_in_window[index] = window["begin"] <= time.time() < window["end"]
            state["sentInWindow"] += sent_in_window[index]
            try:
                await ws.send(HEARTBEAT % (time.time() * 1000, device))
            except websockets.ConnectionClosed:
                return  # the reader counts it

    async def trader(index: int, ws: Any) -> None:
        times.append(ws.handshake_ms)
        beater = asyncio.ensure_future(beats(index, ws))
        try:
            async for frame in ws:
                if "heartbeat_ack" in frame[:32] and sent[index]:
                    if sent_in_window[index]:
                        rtts.append((time.perf_counter() - sent[index]) * 1000)
                    sent[index] = 0.0
                else:
                    unexpected[frame[:40]] += 1
        except websockets.ConnectionClosed:
            closed[f"{ws.close_code} in window" if window["begin"] <= time.time() else str(ws.close_code)] += 1
        finally:
            beater.cancel()

    times: list[float] = []
    started = time.perf_counter()
    sockets, failed, tasks = await open_and_read(
        conns, job.get("concurrency", 50), trader, job.get("source"), time.monotonic() + job["connectS"]
    )
    late = sum(1 for f in failed.values() if f == NOT_OPEN_IN_TIME)
    emit(
        "ready",
        open=len(sockets),
        failed=len(failed) - late,
        notOpenInTime=late,
        failures=[f for f in failed.values() if f != NOT_OPEN_IN_TIME][:5],
        handshakeMs=[round(t, 2) for t in times],
        connectSeconds=round(time.perf_counter() - started, 2),
    )
    if await stdin.wait("go") == "stop":
        return {}
    cpu = cpu_now()
    window["begin"] = time.time()
    window["end"] = window["begin"] + job["seconds"]
    await asyncio.sleep(job["seconds"])
    cpu = cpu_now() - cpu
    # Acks of the window's last beats may still be on their way.
    deadline = time.monotonic() + job.get("graceS", 10)
    while time.monotonic() < deadline and len(rtts) < state["sentInWindow"]:
        await asyncio.sleep(0.1)
    result = {
        "open": len(sockets),
        "window": [window["begin"], window["end"]],
        "rtts": [round(r, 2) for r in rtts],
        "sentInWindow": state["sentInWindow"],
        "unanswered": state["sentInWindow"] - len(rtts),
        "overtaken": state["overtaken"],
        "closed": dict(closed),
        "unexpected": dict(unexpected.most_common(5)),
        "generatorCpu": cpu / job["seconds"],
    }
    for task in tasks:
        task.cancel()
    await close_all(sockets)
    return result


JOBS["idle"] = idle


async def main() -> None:
    raise_nofile_limit()
    job, rest = read_job()
    stdin = Stdin(rest)
    try:
        result = await JOBS[job["kind"]](job, stdin)
    except Exception as error:
        emit("error", error=f"{type(error).__name__}: {error}", trace=traceback.format_exc()[-2000:])
        return
    emit("result", **result)


if __name__ == "__main__":
    asyncio.run(main())
