"""What a connect storm's subscriptions cost each Redis channel layer, in one process.

Each handshake makes a channel and joins its user's group. This runs N of them at once on
channels-redis's RedisPubSubChannelLayer (the stock baseline) and on the service's own layer
(sessions_app/realtime/redis_layer.py), first on an idle event loop, then on one kept busy by
`--hogs` tasks that each hold the loop `--busy-ms` at a time (a server process readmitting a
restarted neighbour's clients is such a loop). Prints the time for all of them, each one's p50
and max, and the SUBSCRIBE commands Redis counted (INFO commandstats, so run it against a Redis
nothing else uses heavily), then the ratios stock / ours.

Usage: .venv/bin/python bench/layer_subscriptions.py [--handshakes 1000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import markdown_table, percentile
from sessions_app.realtime.redis_layer import RedisPubSubLayer


def subscribes(url: str) -> int:
    return int(redis.Redis.from_url(url).info("commandstats").get("cmdstat_subscribe", {}).get("calls", 0))


async def storm(layer: Any, url: str, *, handshakes: int, hogs: int, busy_s: float) -> dict[str, float]:
    stop = False

    async def hog() -> None:
        while not stop:
            until = time.perf_counter() + busy_s
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0)

    warm = await layer.new_channel()
    await layer.group_add("warm", warm)
    running = [asyncio.ensure_future(hog()) for _ in range(hogs)]
    took: list[float] = []

    async def handshake(user: int) -> None:
        began = time.perf_counter()
        channel = await layer.new_channel()
        await layer.group_add(f"user.{user}", channel)
        took.append(time.perf_counter() - began)

    before = subscribes(url)
    began = time.perf_counter()
    await asyncio.gather(*(handshake(user) for user in range(handshakes)))
    total = time.perf_counter() - began
    stop = True
    await asyncio.gather(*running)
    sent = subscribes(url) - before
    await layer.flush()
    return {"s": total, "p50": percentile(took, 0.5) * 1000, "max": max(took) * 1000, "subscribes": sent}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handshakes", type=int, default=1000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--hogs", type=int, default=4)
    parser.add_argument("--busy-ms", type=float, default=2.0)
    args = parser.parse_args()
    settings.configure(REDIS_POOL_SIZE=10)  # the one setting the layer's publishing pools read
    layers = {
        "channels-redis RedisPubSubChannelLayer": lambda n: RedisPubSubChannelLayer(
            hosts=[{"address": args.redis}], prefix=f"bench-stock-{n}"
        ),
        "ours (redis_layer.RedisPubSubLayer)": lambda n: RedisPubSubLayer(
            shards=[{"url": args.redis}], prefix=f"bench-ours-{n}"
        ),
    }
    rows, figures = [], {}
    for loop_name, hogs in (("idle", 0), (f"busy ({args.hogs} x {args.busy_ms:g} ms)", args.hogs)):
        for n, (name, make) in enumerate(layers.items()):
            got = await storm(make(n), args.redis, handshakes=args.handshakes, hogs=hogs, busy_s=args.busy_ms / 1000)
            figures[(loop_name, n)] = got
            rows.append(
                [loop_name, name, f"{got['s']:.3f} s", f"{got['p50']:.1f} / {got['max']:.1f} ms", got["subscribes"]]
            )
        stock, ours = figures[(loop_name, 0)], figures[(loop_name, 1)]
        rows.append([loop_name, "stock / ours", f"{stock['s'] / ours['s']:.1f}x", "", ""])
    print(f"{args.handshakes} handshakes at once: new_channel + group_add (a group each)\n")
    print(markdown_table(["event loop", "layer", "all done", "each p50 / max", "SUBSCRIBEs"], rows))


if __name__ == "__main__":
    asyncio.run(main())
