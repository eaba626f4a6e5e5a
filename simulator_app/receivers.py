"""What the simulator app does when the sessions domain below it tells it something, and what it
adds to the operator's counts and the metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import Count
from django.utils import timezone

from sessions_app.realtime import metrics
from simulator_app import selectors, services
from simulator_app.models import Simulator


def stop_simulator_of_ended_session(sender: object, *, session_id: uuid.UUID, reason: str, **kwargs: object) -> bool:
    """sessions_app.signals.session_ended: stop the simulator the session started (True if there was one)."""
    return services.simulator_stop_for_session(session_id=session_id, reason=reason)


def service_counts() -> dict[str, object]:
    return {
        "simulatorsByStatus": dict(Simulator.objects.values_list("status").annotate(n=Count("pk"))),
        "simulatorWorkersAlive": selectors.live_workers(now=timezone.now()).count(),
    }


@metrics.gauge_at_scrape("simulators", "Simulators by status.", "status")
def simulators_by_status() -> Iterable[tuple[str, int]]:
    return Simulator.objects.values_list("status").annotate(n=Count("pk"))
