"""Numbered pushes for the fleet-restart benchmark: the traffic whose loss it counts.

Run with the service's environment (production: the Redis stream store and channel layer). It
reads a JSON list of session ids on its first stdin line, then pushes through the kernel's own
publish path (`push`: numbered in the session's stream, sent to its user's group for its device) to those
sessions in turn, `--rate` pushes a second, until a `stop` line. It then prints the stream head
of every session as the store holds it: what each client must have seen, no more, no less.

The message is the benchmark's own stream message, not a protocol type: it carries the transport's
guarantee (numbered, replayed, never twice) without claiming anything about a user's simulator.
Not part of the service.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from sessions_app import groups  # noqa: E402
from sessions_app.models import TradingSession  # noqa: E402
from sessions_app.realtime.message_base import StreamMessage, now_ms  # noqa: E402
from sessions_app.realtime.publish import push  # noqa: E402
from sessions_app.realtime.session_stream import stream_store  # noqa: E402


class BenchNotice(StreamMessage):
    type: Literal["bench_notice"] = "bench_notice"
    timestamp: int
    n: int


def main() -> None:
    rate = float(sys.argv[sys.argv.index("--rate") + 1]) if "--rate" in sys.argv else 200.0
    sessions: list[str] = json.loads(sys.stdin.readline())
    os.set_blocking(sys.stdin.fileno(), False)
    owners = {str(s): (u, d) for s, u, d in TradingSession.objects.values_list("id", "user_id", "device_id")}
    pushed = 0
    started = time.monotonic()
    print(json.dumps({"event": "ready", "sessions": len(sessions)}), flush=True)
    while True:
        try:
            line = sys.stdin.readline()
        except (BlockingIOError, OSError):
            line = ""
        if line.strip() == "stop":
            break
        session_id = sessions[pushed % len(sessions)]
        user_id, device_key = owners[session_id]
        push(
            group=groups.user_group(user_id),
            device_key=device_key,
            sessions=[session_id],
            message=BenchNotice(timestamp=now_ms(), n=pushed),
        )
        pushed += 1
        delay = started + pushed / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    heads = asyncio.run(stream_store().heads(sessions))
    print(
        json.dumps(
            {
                "event": "result",
                "pushed": pushed,
                "heads": {sid: [head.epoch, head.seq] if head else None for sid, head in heads.items()},
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
