from __future__ import annotations

import uuid

from django.utils import timezone

from simulator_app.models import LIVE_STATUSES, Simulator, SimulatorStatus


def simulator_stop_for_session(*, session_id: uuid.UUID, reason: str) -> bool:
    """Stop the session's live simulator, if any. Returns whether one was stopped."""
    updated = Simulator.objects.filter(session_id=session_id, status__in=LIVE_STATUSES).update(
        status=SimulatorStatus.STOPPED, stopped_at=timezone.now(), error=""
    )
    return updated > 0
