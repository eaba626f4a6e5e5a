"""Books on the wire (issue 27): bytes per client per second and the server's CPU per delivered tick,
for full books in every `exchange_data` (as before book deltas), book deltas (`bookDeltas`), and
book deltas with the trades, against one embedded daphne process, the modes alternating in rounds
within one run. Every delta client keeps its books with the Python client's BookKeeper: every
update must apply to the book it holds and match its checksum (the run fails otherwise).

Usage: .venv/bin/python bench/market_books_wire.py [--clients 200] [--seconds 20] [--rounds 2]
       [--depth 20] [--tick-ms 500] [--time-scale 60] [--encoding json|msgpack]

The eight seeded instruments get `depth` book levels (an admin's edit), so that `depth` is what
travels. The clients run in this process, on the same machine; the server's CPU is read from /proc.
Not part of the test suite: figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import websockets
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools" / "python-client" / "src"))

from tradesim.books import BookKeeper

from bench.common import CpuSampler, embedded_env, issue_clients, start_daphne
from tests.support.liveserver import manage

MODES = {
    "full books": {},
    "book deltas": {"bookDeltas": True},
    "book deltas and trades": {"bookDeltas": True, "trades": True},
}


@dataclass
class Counts:
    bytes: int = 0
    ticks: int = 0
    books: int = 0


@dataclass
class Client:
    device_id: str
    url: str
    keeper: BookKeeper = field(default_factory=BookKeeper)
    counts: Counts = field(default_factory=Counts)
    stale: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    ws: websockets.ClientConnection | None = None
    msgpack: bool = False  # MessagePack frames (the `tradesim.msgpack` subprotocol)

    async def run(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        subprotocols = [Subprotocol("tradesim.msgpack")] if self.msgpack else None
        self.ws = ws = await websockets.connect(self.url, max_size=None, open_timeout=120, subprotocols=subprotocols)
        await ws.recv()  # connected
        await ws.send(self.encode(self.request("start_simulator", "start")))
        while self.decode(await ws.recv())["type"] != "exchange_data":
            pass
        ready.set()
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            self.counts.bytes += len(frame)  # ASCII JSON: one byte a character
            message = self.decode(frame)
            kind = message["type"]
            if kind == "exchange_data":
                self.counts.ticks += 1
                if "books" in message:
                    self.counts.books += 1
                    _, stale = self.keeper.apply(message)
                    self.stale += len(stale)
            elif kind == "market_subscription":
                self.keeper.clear()
                self.subscribed.set()
        await ws.close()

    def encode(self, message: dict) -> str | bytes:
        return msgpack.packb(message) if self.msgpack else json.dumps(message)

    def decode(self, frame: str | bytes) -> dict:
        return msgpack.unpackb(frame) if isinstance(frame, bytes) else json.loads(frame)

    def request(self, kind: str, request_id: str, **fields: object) -> dict:
        return {"type": kind, "requestId": request_id, "timestamp": 0, "deviceId": self.device_id, **fields}

    async def subscribe(self, depth: int, mode: dict) -> None:
        assert self.ws is not None
        self.subscribed.clear()
        await self.ws.send(self.encode(self.request("subscribe_market", "sub", depth=depth, **mode)))
        await self.subscribed.wait()


async def measure(server_url: str, pid: int, creds: list[dict], args: argparse.Namespace) -> dict[str, list[dict]]:
    clients = [
        Client(
            c["deviceId"],
            f"{server_url}/ws/session/?token={c['token']}&deviceId={c['deviceId']}",
            msgpack=args.encoding == "msgpack",
        )
        for c in creds
    ]
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in clients]
    tasks = []
    for client, ready in zip(clients, readies, strict=True):
        tasks.append(asyncio.create_task(client.run(ready, stop)))
        await asyncio.sleep(0.01)  # no connect storm: that is another benchmark
    async with asyncio.timeout(600):
        for ready in readies:
            await ready.wait()
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with CpuSampler([pid]) as sampler:
        for _ in range(args.rounds):
            for mode, fields in MODES.items():
                await asyncio.gather(*(client.subscribe(args.depth, fields) for client in clients))
                await asyncio.sleep(2)  # past the first snapshots
                before = [Counts(c.counts.bytes, c.counts.ticks, c.counts.books) for c in clients]
                began = time.time()
                await asyncio.sleep(args.seconds)
                ended = time.time()
                sent = sum(c.counts.bytes - b.bytes for c, b in zip(clients, before, strict=True))
                ticks = sum(c.counts.ticks - b.ticks for c, b in zip(clients, before, strict=True))
                results[mode].append(
                    {
                        "bytesPerClientPerSecond": sent / len(clients) / (ended - began),
                        "ticksPerClientPerSecond": ticks / len(clients) / (ended - began),
                        "serverCpuMsPerTick": sampler.cpu(began, ended) * 1000 / max(1, ticks),
                    }
                )
    stop.set()
    await asyncio.gather(*tasks)
    stale = sum(client.stale for client in clients)
    if stale:
        raise SystemExit(f"{stale} books fell out of step (a missed update or a checksum mismatch)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--tick-ms", type=int, default=500)
    parser.add_argument("--time-scale", type=int, default=60)
    parser.add_argument("--encoding", choices=("json", "msgpack"), default="json")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="books-wire-"))
    env = embedded_env(
        directory,
        "books-wire",
        MARKET_TICK_MS=str(args.tick_ms),
        MARKET_TIME_SCALE=str(args.time_scale),
        MARKET_SEED="7",
        LOG_LEVEL="WARNING",
    )
    manage(env, "migrate", "--noinput")
    manage(
        env,
        "shell",
        "-c",
        f"from market_app.models import Instrument; Instrument.objects.update(book_levels={args.depth})",
    )
    creds = issue_clients(env, args.clients, tag="wire", per_user=1)
    server = start_daphne(env, directory)
    try:
        assert server.process is not None
        results = asyncio.run(measure(server.ws, server.process.pid, creds, args))
    finally:
        server.stop()
    full = statistics.median(r["bytesPerClientPerSecond"] for r in results["full books"])
    print(
        f"\n{args.clients} clients, depth {args.depth}, the eight seeded instruments, a tick every {args.tick_ms} ms "
        f"at {args.time_scale}x, {args.encoding} frames, {args.rounds} rounds of {args.seconds:.0f} s a mode (medians)"
    )
    print("| mode | bytes per client per second | ratio to full books | server CPU ms per delivered tick |")
    print("| --- | --- | --- | --- |")
    for mode, rounds in results.items():
        rate = statistics.median(r["bytesPerClientPerSecond"] for r in rounds)
        cpu = statistics.median(r["serverCpuMsPerTick"] for r in rounds)
        print(f"| {mode} | {rate:,.0f} | {rate / full:.2f} | {cpu:.3f} |")
    print("every delta client's books applied every update and matched every checksum")


if __name__ == "__main__":
    main()
