"""The per-connection queue on the message path: daphne's asyncio.Queue against ConnectionInbox.

One reader waits on the queue as a connection's dispatch loop does; a writer puts a message and
yields, as a frame or a channel-layer event arriving does. Both queues run interleaved rounds in one
process and the figure is the best round of each (process CPU time, so other load on the machine
counts little), with the ratio.

  .venv/bin/python bench/connection_inbox.py [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from sessions_app.realtime.internals import ConnectionInbox


async def one_round(make: type, messages: int) -> float:
    queue = make()
    done = asyncio.get_running_loop().create_future()

    async def reader() -> None:
        for _ in range(messages):
            await queue.get()
        done.set_result(None)

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)
    start = time.process_time()
    message = {"type": "websocket.receive", "text": "{}"}
    for _ in range(messages):
        queue.put_nowait(message)
        await asyncio.sleep(0)  # the reader takes it, as the loop's next pass would
    await done
    elapsed = time.process_time() - start
    await task
    return elapsed


async def main(messages: int, rounds: int) -> None:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, make in (("asyncio.Queue", asyncio.Queue), ("ConnectionInbox", ConnectionInbox)):
            elapsed = await one_round(make, messages)
            best[name] = min(best.get(name, elapsed), elapsed)
    for name, elapsed in best.items():
        print(f"{name:16} {elapsed / messages * 1e6:6.2f} µs CPU per message (best of {rounds})")
    print(f"ConnectionInbox / asyncio.Queue: {best['ConnectionInbox'] / best['asyncio.Queue']:.2f}x the CPU")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds))
