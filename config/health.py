"""Liveness and readiness, for process managers and load balancers.

`/healthz`: the process answers HTTP (no dependencies checked, so a database outage does
not get every process restarted). `/readyz`: the database answers and a message makes a
round trip through the channel layer; 503 otherwise, naming what failed.
"""

from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

CHECK_TIMEOUT_S = 2.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readiness.probe"})
    message = await layer.receive(channel)
    if message.get("type") != "readiness.probe":
        raise RuntimeError("unexpected message")


async def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:200] or "timeout"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def readyz(request: HttpRequest) -> JsonResponse:
    database, layer = await asyncio.gather(_timed(database_sync_to_async(_database)), _timed(_channel_layer))
    checks = {"database": database, "channelLayer": layer}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
