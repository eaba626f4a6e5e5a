"""What the session stream store costs on Redis beyond one server, against one server in the same run.

Usage: .venv/bin/python bench/redis_topologies.py [--pushes 500] [--sessions 8] [--rounds 7]

Starts redis-servers of its own (two shards; a master with a replica and three Sentinels) in a
temporary directory and measures, on each topology, the time per push appended to `--sessions`
sessions at once (the store's one-script-per-shard append) and per stream head read, as ratios
to one plain server (medians of interleaved rounds). The Sentinel figure includes the fenced
epoch (the master's replication ID read inside each script). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from sessions_app.realtime.redis_clients import RedisShard  # noqa: E402
from sessions_app.realtime.session_stream import RedisStreamStore  # noqa: E402
from tests.support.faults import RedisServer  # noqa: E402
from tests.support.redis_servers import MASTER_NAME, redis_shards, sentinel_group  # noqa: E402


class FencedStore(RedisStreamStore):
    """A plain server's store that reads the replication ID as a Sentinel shard's does."""

    def _fenced(self, index: int) -> bool:
        return True


def measure(store: RedisStreamStore, *, pushes: int, sessions: int) -> tuple[float, float]:
    ids = [f"bench-{n}" for n in range(sessions)]
    for _ in range(50):  # warm the pools and the script cache
        store.append(ids, '{"type":"x"}')
    started = time.perf_counter()
    for _ in range(pushes):
        store.append(ids, '{"type":"x"}')
    append_s = (time.perf_counter() - started) / pushes

    async def heads() -> float:
        for _ in range(50):
            await store.head(ids[0])
        started = time.perf_counter()
        for _ in range(pushes):
            await store.head(ids[0])
        return (time.perf_counter() - started) / pushes

    head_s = asyncio.run(heads())
    store.reset(ids)
    return append_s, head_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=500, help="per round and topology")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    kwargs = {"prefix": "bench", "max_messages": 256, "ttl_s": 600}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        one = RedisServer(directory).start()
        stack.callback(one.stop)
        shards = stack.enter_context(redis_shards(directory / "shards", 2))
        group = stack.enter_context(sentinel_group(directory / "sentinel"))
        sentinels = tuple(("127.0.0.1", s.port) for s in group.sentinels)
        stores = {
            "one server": RedisStreamStore(url=one.url, **kwargs),
            "one server, fenced epoch": FencedStore(url=one.url, **kwargs),
            "two shards": RedisStreamStore(shards=[RedisShard(url=s.url) for s in shards], **kwargs),
            "sentinel master + replica": RedisStreamStore(
                shards=[RedisShard(sentinels=sentinels, master_name=MASTER_NAME)], **kwargs
            ),
        }
        # Rounds interleave the topologies, so the shared machine's load falls on each alike.
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
        for _ in range(args.rounds):
            for name, store in stores.items():
                samples[name].append(measure(store, pushes=args.pushes, sessions=args.sessions))
    medians = {
        name: (statistics.median(a for a, _ in rows), statistics.median(h for _, h in rows))
        for name, rows in samples.items()
    }
    base_append, base_head = medians["one server"]
    print(f"\n{args.rounds} rounds of {args.pushes} pushes to {args.sessions} sessions each, then as many head reads")
    print(f"{'topology (median)':28} {'append µs':>10} {'ratio':>6} {'head µs':>9} {'ratio':>6}")
    for name, (append_s, head_s) in medians.items():
        append_us, head_us = append_s * 1e6, head_s * 1e6
        print(f"{name:28} {append_us:10.0f} {append_s / base_append:6.2f} {head_us:9.0f} {head_s / base_head:6.2f}")


if __name__ == "__main__":
    main()
