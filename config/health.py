"""Liveness, readiness and metrics, for process managers, load balancers and Prometheus.

`/healthz`: the process answers HTTP (no dependencies checked, so a database outage does
not get every process restarted). `/readyz`: the database answers, the channel-layer watchdog's
probes come back, and the process is not stopping; 503 otherwise, naming what failed.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from sessions_app.errors import HttpCode
from sessions_app.realtime import metrics
from sessions_app.realtime.admission import shutting_down
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.watchdog import process_watchdog

CHECK_TIMEOUT_S = 2.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _timed(check: Callable[[], Awaitable[object]]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:200] or "timeout"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {
        "database": await _timed(database_sync_to_async(_database)),
        # The watchdog's probes through the layer, twice a second (sessions_app/realtime/watchdog.py).
        "channelLayer": process_watchdog().readiness(),
        "accepting": {"ok": not shutting_down()},
    }
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def _metrics_allowed(request: HttpRequest) -> bool:
    if settings.METRICS_TOKEN:
        supplied = request.headers.get("Authorization", "")
        return hmac.compare_digest(supplied.encode(), f"Bearer {settings.METRICS_TOKEN}".encode())
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_IPS


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition. Only with METRICS_TOKEN as a bearer token, or (without one) from METRICS_ALLOWED_IPS."""
    if not _metrics_allowed(request):
        body = ProtocolError(HttpCode.PERMISSION_DENIED, "metrics need METRICS_TOKEN or an allowed address")
        return JsonResponse(body.to_message().to_dict(), status=403)
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
