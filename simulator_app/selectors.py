"""Reads of the simulator app."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from sessions_app.models import SessionStatus, TradingSession
from sessions_app.rows import one_or_none
from simulator_app.leases import lease_ttl
from simulator_app.models import LIVE_STATUSES, Simulator, SimulatorStatus, SimulatorWorker


def live_simulator_of_user(*, user_id: int) -> Simulator | None:
    return one_or_none(Simulator.objects.filter(user_id=user_id, status__in=LIVE_STATUSES))


def running_simulator_of_user(*, user_id: int) -> Simulator | None:
    """The user's running simulator with its worker (orders are matched only while one runs)."""
    return one_or_none(
        Simulator.objects.select_related("worker").filter(user_id=user_id, status=SimulatorStatus.RUNNING)
    )


def profile_of_held_simulator(*, simulator_id: uuid.UUID, worker_id: str, epoch: int) -> str | None:
    """The realism profile of the running simulator if this worker still holds it under this lease
    epoch; None if it does not."""
    held = Simulator.objects.held_by(worker_id, epoch).filter(pk=simulator_id, status=SimulatorStatus.RUNNING)
    return held.values_list("profile", flat=True).first()


def live_simulator_ids_of_session(*, session_id: uuid.UUID) -> list[uuid.UUID]:
    return list(Simulator.objects.filter(session_id=session_id, status__in=LIVE_STATUSES).values_list("id", flat=True))


def live_workers(*, now: datetime) -> QuerySet[SimulatorWorker]:
    """Workers alive: not stopped, and a heartbeat within one lease."""
    return SimulatorWorker.objects.filter(stopped_at__isnull=True, heartbeat_at__gte=now - lease_ttl())


def worker_is_live(worker: SimulatorWorker, *, now: datetime) -> bool:
    """The same rule as live_workers, for a row already loaded."""
    return worker.stopped_at is None and worker.heartbeat_at >= now - lease_ttl()


def worker_available(*, now: datetime) -> bool:
    """Is some worker alive to run a new simulator?"""
    return live_workers(now=now).exists()


def simulators_adoptable(*, now: datetime, limit: int) -> list[uuid.UUID]:
    """Live simulators nobody holds: never picked up, handed over, or their worker's lease lapsed."""
    return list(
        Simulator.objects.filter(status__in=LIVE_STATUSES)
        .free(now)
        .order_by("lease_expires_at")
        .values_list("id", flat=True)[:limit]
    )


def orphaned_before(now: datetime) -> datetime:
    """A live simulator whose lease ended before this has had no worker for longer than the grace."""
    return now - timedelta(milliseconds=settings.SIMULATOR_ORPHAN_GRACE_MS)


def simulators_orphaned(*, now: datetime) -> list[uuid.UUID]:
    """Live simulators no worker has held for longer than the orphan grace."""
    return list(
        Simulator.objects.filter(status__in=LIVE_STATUSES, lease_expires_at__lt=orphaned_before(now)).values_list(
            "id", flat=True
        )
    )


def simulators_idle(*, worker_id: str, now: datetime) -> list[uuid.UUID]:
    """Running simulators of this worker whose user has had no connected client for the idle timeout."""
    cutoff = now - timedelta(seconds=settings.SIMULATOR_IDLE_TIMEOUT_S)
    user_seen = TradingSession.objects.filter(
        user_id=OuterRef("user_id"), status=SessionStatus.ACTIVE, last_seen_at__gte=cutoff
    )
    return list(
        Simulator.objects.filter(worker_id=worker_id, status=SimulatorStatus.RUNNING, status_changed_at__lt=cutoff)
        .exclude(Exists(user_seen))
        .values_list("id", flat=True)
    )
