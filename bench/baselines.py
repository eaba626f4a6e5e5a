"""The baselines' own processes, each started by the benchmark suite next to the service:

  bare PORT [--tick-ms T]   a minimal `websockets` server answering the same heartbeat_ack as the
                            service (the near-limit for Python), and, with --tick-ms, broadcasting
                            an `exchange_data` tick to every connection every T ms
  publish --tick-ms T       the publisher of the stock-Channels fan-out: every T ms one
                            `group_send` of a tick to the group every stock consumer joined
                            (bench/stock_channels.py), through the configured channel layer
                            (channels-redis when REDIS_URL is set)

Both print `ready` on stdout once serving, and stop on SIGTERM.

And one ASGI application, run under daphne by the suite:

  daphne_floor              the same heartbeat_ack from a raw ASGI callable (no Django, no
                            Channels): what daphne, Twisted and autobahn cost before any
                            application code, the ceiling for anything served by daphne
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import sys
import time
from pathlib import Path

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "SPY", "BTC-USD", "EUR-USD")


def tick_symbols(seq: int) -> dict[str, dict]:
    """Eight quotes shaped like the service's (`Quote.to_wire`)."""
    rng = random.Random(seq)
    return {
        s: {"price": round(100 + rng.random() * 50, 2), "change": round(rng.random() - 0.5, 4), "volume": 1000 + seq}
        for s in SYMBOLS
    }


def heartbeat_ack(message: dict) -> str:
    return json.dumps(
        {
            "type": "heartbeat_ack",
            "timestamp": int(time.time() * 1000),
            "clientTimestamp": message["timestamp"],
            "deviceId": message["deviceId"],
            "deviceIdValid": True,
            "connectionQualityUpdate": "good",
            "sessionStatus": "valid",
            "simulatorStatus": "stopped",
        }
    )


async def bare(port: int, tick_ms: int) -> None:
    import websockets

    clients: set = set()

    async def handler(ws) -> None:
        clients.add(ws)
        try:
            async for frame in ws:
                await ws.send(heartbeat_ack(json.loads(frame)))
        except websockets.ConnectionClosed:
            pass
        finally:
            clients.discard(ws)

    async def ticker() -> None:
        seq, interval = 0, tick_ms / 1000
        next_at = time.monotonic()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            seq += 1
            text = json.dumps(
                {
                    "type": "exchange_data",
                    "timestamp": int(time.time() * 1000),
                    "symbols": tick_symbols(seq),
                    "seq": seq,
                },
                separators=(",", ":"),
            )
            websockets.broadcast(clients, text)

    server = await websockets.serve(
        handler, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None, backlog=1024
    )
    ticking = asyncio.ensure_future(ticker()) if tick_ms else None
    await serve_until_sigterm(server)
    if ticking is not None:
        ticking.cancel()


async def publish(tick_ms: int, group: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    seq, interval = 0, tick_ms / 1000
    next_at = time.monotonic()
    late = 0
    while not stop.is_set():
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late += 1
        seq += 1
        event = {"type": "market.tick", "seq": seq, "timestamp": int(time.time() * 1000), "symbols": tick_symbols(seq)}
        await layer.group_send(group, event)
    print(json.dumps({"published": seq, "late": late}), flush=True)


async def daphne_floor(scope: dict, receive, send) -> None:
    if scope["type"] == "http":  # the readiness probe
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": heartbeat_ack(json.loads(event["text"]))})
        elif event["type"] == "websocket.disconnect":
            return


async def serve_until_sigterm(server) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    bare_parser = sub.add_parser("bare")
    bare_parser.add_argument("port", type=int)
    bare_parser.add_argument("--tick-ms", type=int, default=0)
    publish_parser = sub.add_parser("publish")
    publish_parser.add_argument("--tick-ms", type=int, default=100)
    publish_parser.add_argument("--group", default="stock-broadcast")
    args = parser.parse_args()
    if args.what == "bare":
        asyncio.run(bare(args.port, args.tick_ms))
    else:
        asyncio.run(publish(args.tick_ms, args.group))


if __name__ == "__main__":
    main()
