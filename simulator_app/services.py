"""Writes of the simulator app: start and stop (for clients, sessions and operators),
and what the workers write under their simulators' leases (claim, renew, finish, fail, release;
the lease itself is simulator_app.leases).

Every status change goes through `_set_status`, which bumps `version` and
publishes `simulator.status` after commit. Worker-side writes name the lease
epoch they hold; a worker whose lease was taken over finds its writes refused.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, JSONField, Value, When
from django.utils import timezone

from sessions_app import services as sessions_services
from sessions_app.connection_state import SimulatorSummary
from sessions_app.groups import user_group
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.realtime.message_base import epoch_ms, now_ms
from sessions_app.realtime.publish import notify, push
from sessions_app.selectors import active_session_ids_of_user
from simulator_app import selectors
from simulator_app.clock import ClockSettings
from simulator_app.errors import SimulatorCode
from simulator_app.events import SimulatorAssignCommand, SimulatorClockCommand, SimulatorStopCommand
from simulator_app.groups import assignment_channel
from simulator_app.messages import ClockUpdate, SimulatorStatusUpdate
from simulator_app.models import (
    DEFAULT_PROFILE,
    LIVE_STATUSES,
    Simulator,
    SimulatorProfile,
    SimulatorStatus,
    SimulatorWorker,
)
from simulator_app.signals import simulator_ended


def _set_status(simulator: Simulator, status: SimulatorStatus, reason: str, now: datetime, **fields: Any) -> None:
    simulator.status = status
    simulator.reason = reason[:300]
    simulator.version += 1
    simulator.status_changed_at = now
    for name, value in fields.items():
        setattr(simulator, name, value)
    simulator.save()
    _publish_status(simulator)
    if status in (SimulatorStatus.STOPPED, SimulatorStatus.ERROR):
        # The apps above act on it in this transaction (the market cancels the user's open orders).
        simulator_ended.send(sender=Simulator, user_id=simulator.user_id, status=status.value, reason=reason)


def simulator_summary(simulator: Simulator) -> SimulatorSummary:
    """What the sessions floor keeps of a simulator (connections' heartbeats, session info)."""
    return SimulatorSummary(
        status=simulator.status,
        simulator_id=str(simulator.id),
        profile=simulator.profile,
        created_ms=epoch_ms(simulator.created_at),
        version=simulator.version,
        market=simulator.market_source,
    )


def _publish_status(simulator: Simulator) -> None:
    """Keep the sessions floor's copy of the user's simulator and tell every connection of the user."""
    summary = simulator_summary(simulator)
    sessions_services.simulator_status_record(
        user_id=simulator.user_id,
        simulator_id=simulator.id,
        status=simulator.status,
        profile=simulator.profile,
        created_at=simulator.created_at,
        version=simulator.version,
        market=simulator.market_source,
    )
    message = SimulatorStatusUpdate(
        simulatorId=str(simulator.id),
        simulatorStatus=simulator.status,
        timestamp=now_ms(),
        sessionId=str(simulator.session_id),
        reason=simulator.reason or None,
    )
    user_id = simulator.user_id
    push(
        group=user_group(user_id),
        message=message,
        sessions=lambda: active_session_ids_of_user(user_id),
        simulator=summary,
    )


def _request_assignment(simulator_id: uuid.UUID) -> None:
    command: SimulatorAssignCommand = {"type": "simulator.assign", "simulatorId": str(simulator_id)}
    notify(channel=assignment_channel(), event=command)


def _request_stop(simulator: Simulator, worker_channel: str) -> None:
    command: SimulatorStopCommand = {"type": "simulator.stop", "simulatorId": str(simulator.id)}
    notify(channel=worker_channel, event=command)


def _locked(**conditions: Any) -> Simulator | None:
    """The simulator row matching `conditions`, locked for this transaction (skipped if another holds it)."""
    query = Simulator.objects.filter(**conditions)
    if connection.features.has_select_for_update_skip_locked:
        query = query.select_for_update(skip_locked=True)
    return query.first()


# --- Start and stop -------------------------------------------------------------


def _already_running(simulator: Simulator) -> ProtocolError:
    return ProtocolError(
        SimulatorCode.SIMULATOR_ALREADY_RUNNING,
        f"simulator {simulator.id} is {simulator.status}",
        details=[
            ErrorDetail(field="simulatorId", problem=str(simulator.id)),
            ErrorDetail(field="status", problem=simulator.status),
        ],
    )


def simulator_start(
    *,
    user_id: int,
    session_id: uuid.UUID,
    profile: str | None = None,
    market: dict[str, Any] | None = None,
    clock: ClockSettings | None = None,
) -> Simulator:
    """Create the user's simulator (status `starting`) and ask a worker to run it, with the realism
    profile chosen (none: the default) and its market: none for the shared feed, or a market of its own
    (checked by the market app: `{"source": "replay", "datasetId", "symbols", "start", "end"}` or
    `{"source": "synthetic", "seed"}`) with the clock's first settings."""
    if profile is not None and profile not in SimulatorProfile.values:
        raise ProtocolError(
            SimulatorCode.UNKNOWN_PROFILE,
            f"unknown profile {profile!r}",
            details=[ErrorDetail(field="profile", problem=f"one of {', '.join(SimulatorProfile.values)}")],
        )
    now = timezone.now()
    if not selectors.worker_available(now=now):
        raise ProtocolError(SimulatorCode.SIMULATOR_UNAVAILABLE)
    try:
        with transaction.atomic():
            live = selectors.live_simulator_of_user(user_id=user_id)
            if live is not None:
                raise _already_running(live)
            simulator = Simulator(
                user_id=user_id,
                session_id=session_id,
                lease_expires_at=now,
                profile=profile or DEFAULT_PROFILE,
                market=market or {},
                clock=(clock or ClockSettings()).to_state() if market else {},
            )
            _set_status(simulator, SimulatorStatus.STARTING, "start requested", now)
            _request_assignment(simulator.id)
            return simulator
    except IntegrityError:
        # Two starts raced past the check; the partial unique index let one through.
        live = selectors.live_simulator_of_user(user_id=user_id)
        if live is None:
            raise
        raise _already_running(live) from None


@dataclass(frozen=True)
class StopRequest:
    simulator_id: uuid.UUID
    status: str


def _stop(simulator_id: uuid.UUID, reason: str) -> StopRequest | None:
    """Stop a live simulator: at once if no worker holds it, else `stopping` and a command to its worker."""
    with transaction.atomic():
        simulator = (
            Simulator.objects.select_for_update(of=("self",)).select_related("worker").filter(pk=simulator_id).first()
        )
        if simulator is None or not simulator.is_live:
            return None
        now = timezone.now()
        if simulator.status == SimulatorStatus.STOPPING:
            pass
        elif simulator.worker is None:
            _set_status(simulator, SimulatorStatus.STOPPED, reason, now, stopped_at=now, lease_expires_at=None)
        else:
            _set_status(simulator, SimulatorStatus.STOPPING, reason, now)
            _request_stop(simulator, simulator.worker.channel_name)
        return StopRequest(simulator.id, simulator.status)


def simulator_stop(*, user_id: int, reason: str) -> StopRequest:
    """Stop the user's live simulator (a client's `stop_simulator`)."""
    live = selectors.live_simulator_of_user(user_id=user_id)
    request = _stop(live.id, reason) if live is not None else None
    if request is None:
        raise ProtocolError(SimulatorCode.SIMULATOR_NOT_RUNNING)
    return request


def simulator_stop_for_session(*, session_id: uuid.UUID, reason: str) -> bool:
    """Stop the simulator the session started, if live. Returns whether there was one."""
    stopped = False
    for simulator_id in selectors.live_simulator_ids_of_session(session_id=session_id):
        stopped = _stop(simulator_id, reason) is not None or stopped
    return stopped


def simulator_stop_by_operator(*, simulator: Simulator, reason: str = "stopped by an operator") -> bool:
    return _stop(simulator.id, reason) is not None


# --- The trader's clock (a market of the simulator's own) -----------------------------


def _clock_request(user_id: int, change: str, make: Any) -> tuple[Simulator, ClockSettings]:
    """Record a change of the user's clock (`make(simulator, settings)` returns the new settings or
    raises) and tell the worker holding the simulator; one that holds none applies it when it claims."""
    with transaction.atomic():
        live = selectors.live_simulator_of_user(user_id=user_id)
        simulator = _locked_for_clock(live.id) if live is not None else None
        if simulator is None or simulator.status not in (SimulatorStatus.STARTING, SimulatorStatus.RUNNING):
            raise ProtocolError(SimulatorCode.SIMULATOR_NOT_RUNNING, f"{change} needs a running simulator")
        if not simulator.own_market:
            raise ProtocolError(SimulatorCode.CLOCK_UNAVAILABLE)
        current = ClockSettings.from_state(simulator.clock)
        settings: ClockSettings = make(simulator, current)
        simulator.clock = settings.to_state()
        simulator.save(update_fields=["clock"])
        worker = simulator.worker
        if worker is not None:
            command: SimulatorClockCommand = {
                "type": "simulator.clock",
                "simulatorId": str(simulator.id),
                "clock": simulator.clock,
            }
            notify(channel=worker.channel_name, event=command)
        return simulator, settings


def _locked_for_clock(simulator_id: uuid.UUID) -> Simulator | None:
    return Simulator.objects.select_for_update(of=("self",)).select_related("worker").filter(pk=simulator_id).first()


_UNCHANGED = object()


def simulator_clock_set(
    *,
    user_id: int,
    speed: float | object | None = _UNCHANGED,
    paused: bool | None = None,
    lockstep: bool | None = None,
) -> tuple[Simulator, ClockSettings]:
    """Play, pause, change the speed (None: `max`) or the lock-step of the user's own market; what is
    left out stays."""

    def make(simulator: Simulator, current: ClockSettings) -> ClockSettings:
        return ClockSettings(
            speed=current.speed if speed is _UNCHANGED else speed,  # type: ignore[arg-type]
            paused=current.paused if paused is None else paused,
            lockstep=current.lockstep if lockstep is None else lockstep,
            version=current.version + 1,
        )

    return _clock_request(user_id, "set_clock", make)


def simulator_clock_step(*, user_id: int, bars: int) -> tuple[Simulator, ClockSettings]:
    """Play `bars` bars of the user's paused own market at once."""

    def make(simulator: Simulator, current: ClockSettings) -> ClockSettings:
        if not current.paused:
            raise ProtocolError(SimulatorCode.CLOCK_PLAYING)
        return dataclasses.replace(current, paused=True, version=current.version + 1, step=bars, seek_ms=None)

    return _clock_request(user_id, "step_clock", make)


def simulator_clock_seek(*, user_id: int, time_ms: int) -> tuple[Simulator, ClockSettings]:
    """Move the user's replay to the first bar at or after `time_ms`, within its range."""

    def make(simulator: Simulator, current: ClockSettings) -> ClockSettings:
        market = simulator.market
        start, end = market.get("start"), market.get("end")
        if market.get("source") != "replay" or start is None or end is None or not start <= time_ms <= end:
            where = f"{start} .. {end}" if market.get("source") == "replay" else "a synthetic walk cannot seek"
            raise ProtocolError(
                SimulatorCode.TIME_OUT_OF_RANGE,
                f"time {time_ms} is outside the replay's range {where}",
                details=[ErrorDetail(field="time", problem=where)],
            )
        return dataclasses.replace(current, version=current.version + 1, step=0, seek_ms=time_ms)

    return _clock_request(user_id, "seek_clock", make)


@transaction.atomic
def simulator_clock_report(
    *, user_id: int, message: ClockUpdate, worker_id: str, epoch: int, checkpoint: dict[str, Any]
) -> None:
    """Write the run's checkpoint, then tell every connection of the user where their simulator's
    clock stands (numbered: a client that reconnects gets the last one it missed).

    The checkpoint is written now, not at the worker's next lease renewal: a client that asks for
    the run's report on hearing the replay finished (or paused) must get all the bars it was shown.
    Only while the worker still holds the simulator (`epoch`).
    """
    Simulator.objects.filter(pk=message.simulatorId).held_by(worker_id, epoch).update(state=checkpoint)
    push(group=user_group(user_id), message=message, sessions=lambda: active_session_ids_of_user(user_id))


# --- The lease protocol (used by simulator_app.worker) ----------------------------


@dataclass(frozen=True)
class Claim:
    simulator_id: uuid.UUID
    epoch: int
    status: str
    user_id: int
    session_id: uuid.UUID
    state: dict[str, Any]
    recovered_from: str | None  # the worker whose lease lapsed, when this is an adoption after a crash
    profile: str = DEFAULT_PROFILE.value  # the realism profile its market runs with
    market: dict[str, Any] = field(default_factory=dict)  # where its prices come from (empty: the shared feed)
    clock: dict[str, Any] = field(default_factory=dict)  # its trader's clock settings (ClockSettings.to_state())


WORKER_RECORD_RETENTION = timedelta(days=7)


def worker_register(*, worker_id: str, hostname: str, pid: int, runner: str, channel_name: str) -> None:
    """Record a starting worker, and forget workers silent for a week (every process start adds one)."""
    SimulatorWorker.objects.filter(heartbeat_at__lt=timezone.now() - WORKER_RECORD_RETENTION).delete()
    SimulatorWorker.objects.update_or_create(
        pk=worker_id,
        defaults={
            "hostname": hostname[:100],
            "pid": pid,
            "runner": runner,
            "channel_name": channel_name,
            "capacity": settings.SIMULATOR_WORKER_CAPACITY,
            "heartbeat_at": timezone.now(),
            "stopped_at": None,
        },
    )


@transaction.atomic
def simulator_claim(*, simulator_id: uuid.UUID, worker_id: str) -> Claim | None:
    """Take a simulator nobody holds (new, handed over, or whose worker's lease lapsed). None if taken."""
    now = timezone.now()
    simulator = _locked(pk=simulator_id, status__in=LIVE_STATUSES)
    if simulator is None:
        return None
    recovered_from = simulator.worker_id
    if not simulator.claim(worker_id=worker_id, now=now):
        return None
    simulator.worker_heartbeat_at = now
    if recovered_from is not None and simulator.status == SimulatorStatus.RUNNING:
        # Its worker died: clients see it recover (starting, then running again).
        _set_status(simulator, SimulatorStatus.STARTING, f"recovering: worker {recovered_from} stopped responding", now)
    else:
        simulator.save()
    return Claim(
        simulator_id=simulator.id,
        epoch=simulator.lease_epoch,
        status=simulator.status,
        user_id=simulator.user_id,
        session_id=simulator.session_id,
        state=dict(simulator.state),
        recovered_from=recovered_from,
        profile=simulator.profile,
        market=dict(simulator.market),
        clock=dict(simulator.clock),
    )


def _held(claim_id: uuid.UUID, worker_id: str, epoch: int) -> Simulator | None:
    return (
        Simulator.objects.select_for_update()
        .held_by(worker_id, epoch)
        .filter(pk=claim_id, status__in=LIVE_STATUSES)
        .first()
    )


@transaction.atomic
def simulator_mark_running(*, simulator_id: uuid.UUID, worker_id: str, epoch: int, reason: str) -> bool:
    """starting -> running, by the worker holding it. False if the lease was lost or it is stopping."""
    simulator = _held(simulator_id, worker_id, epoch)
    if simulator is None or simulator.status == SimulatorStatus.STOPPING:
        return False
    if simulator.status == SimulatorStatus.STARTING:
        now = timezone.now()
        _set_status(simulator, SimulatorStatus.RUNNING, reason, now, started_at=simulator.started_at or now)
    return True


@transaction.atomic
def simulator_finish_stop(
    *, simulator_id: uuid.UUID, worker_id: str, epoch: int, state: dict[str, Any], reason: str | None = None
) -> bool:
    """Persist the final state and mark it stopped. With `reason`, the worker itself decided to stop it."""
    simulator = _held(simulator_id, worker_id, epoch)
    if simulator is None:
        return False
    now = timezone.now()
    if simulator.status != SimulatorStatus.STOPPING:
        if reason is None:
            return False
        _set_status(simulator, SimulatorStatus.STOPPING, reason, now)
    _set_status(
        simulator,
        SimulatorStatus.STOPPED,
        reason or simulator.reason,
        now,
        stopped_at=now,
        state=state,
        worker=None,
        lease_expires_at=None,
    )
    return True


@transaction.atomic
def simulator_fail(*, simulator_id: uuid.UUID, worker_id: str, epoch: int, error: str) -> bool:
    simulator = _held(simulator_id, worker_id, epoch)
    if simulator is None:
        return False
    now = timezone.now()
    _set_status(
        simulator,
        SimulatorStatus.ERROR,
        error,
        now,
        error=error[:500],
        stopped_at=now,
        worker=None,
        lease_expires_at=None,
    )
    return True


@dataclass(frozen=True)
class HeldSimulator:
    epoch: int
    state: dict[str, Any] | None  # a checkpoint to persist, or None when unchanged


@dataclass
class LeaseReport:
    kept: set[uuid.UUID] = field(default_factory=set)
    stop_requested: set[uuid.UUID] = field(default_factory=set)
    lost: set[uuid.UUID] = field(default_factory=set)
    clocks: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)  # own markets' clock settings


@transaction.atomic
def worker_heartbeat(*, worker_id: str, held: Mapping[uuid.UUID, HeldSimulator]) -> LeaseReport:
    """Renew the worker's leases and checkpoint its simulators' state, in one transaction.

    Reports which simulators it still holds, which were asked to stop (a lost command
    is caught here), which it lost (taken over, or ended by someone else), and the clock
    settings of those with a market of their own (a lost clock command is caught here too).
    """
    now = timezone.now()
    SimulatorWorker.objects.filter(pk=worker_id).update(heartbeat_at=now, running=len(held), stopped_at=None)
    report = LeaseReport()
    rows = {
        row[0]: row[1:]
        for row in Simulator.objects.select_for_update()
        .filter(worker_id=worker_id, pk__in=list(held))
        .values_list("id", "lease_epoch", "status", "clock")
    }
    for simulator_id, run in held.items():
        epoch, status, clock = rows.get(simulator_id, (None, None, None))
        if clock:
            report.clocks[simulator_id] = clock
        if epoch != run.epoch or status not in LIVE_STATUSES:
            report.lost.add(simulator_id)
        elif status == SimulatorStatus.STOPPING:
            report.stop_requested.add(simulator_id)
        else:
            report.kept.add(simulator_id)
    renewed = report.kept | report.stop_requested
    if renewed:
        Simulator.objects.filter(pk__in=renewed).renew(now=now, worker_heartbeat_at=now)
    checkpoints = {i: held[i].state for i in renewed if held[i].state is not None}
    if checkpoints:
        Simulator.objects.filter(pk__in=list(checkpoints)).update(
            state=Case(
                *(When(pk=i, then=Value(state, output_field=JSONField())) for i, state in checkpoints.items()),
                output_field=JSONField(),
            )
        )
    return report


@transaction.atomic
def worker_release(*, worker_id: str, held: Mapping[uuid.UUID, HeldSimulator]) -> list[uuid.UUID]:
    """Hand the worker's simulators over (on SIGTERM): checkpoint, let go, and ask another worker to take them."""
    now = timezone.now()
    released = []
    for simulator_id, run in held.items():
        checkpoint = {} if run.state is None else {"state": run.state}
        held_here = Simulator.objects.filter(pk=simulator_id, status__in=LIVE_STATUSES).held_by(worker_id, run.epoch)
        if held_here.release(now=now, **checkpoint):
            _request_assignment(simulator_id)
            released.append(simulator_id)
    SimulatorWorker.objects.filter(pk=worker_id).update(stopped_at=now, heartbeat_at=now, running=0)
    return released


# --- Housekeeping (run by the server processes) -----------------------------------


def simulators_fail_orphaned() -> int:
    """Simulators no worker has held for longer than the grace: `error` (or `stopped` if stopping).

    This is what clients see when every worker is gone, instead of a stale `running`.
    """
    count = 0
    for simulator_id in selectors.simulators_orphaned(now=timezone.now()):
        with transaction.atomic():
            now = timezone.now()
            cutoff = selectors.orphaned_before(now)
            simulator = _locked(pk=simulator_id, status__in=LIVE_STATUSES, lease_expires_at__lt=cutoff)
            if simulator is None:
                continue
            if simulator.status == SimulatorStatus.STOPPING:
                _set_status(
                    simulator,
                    SimulatorStatus.STOPPED,
                    simulator.reason,
                    now,
                    stopped_at=now,
                    worker=None,
                    lease_expires_at=None,
                )
            else:
                error = "no simulator worker is running it (its lease lapsed and no worker took it over)"
                _set_status(
                    simulator,
                    SimulatorStatus.ERROR,
                    error,
                    now,
                    error=error,
                    stopped_at=now,
                    worker=None,
                    lease_expires_at=None,
                )
            count += 1
    return count
