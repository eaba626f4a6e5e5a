"""The simulator services and the lease protocol workers follow, against the real ORM."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from django.utils import timezone

from sessions_app.groups import user_group
from sessions_app.models import TradingSession
from sessions_app.realtime.errors import ProtocolError
from sessions_app.selectors import simulator_summary_of_user
from simulator_app import selectors, services
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator, SimulatorStatus, SimulatorWorker
from simulator_app.services import HeldSimulator
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db(transaction=True)]


def start(session: TradingSession) -> Simulator:
    return services.simulator_start(user_id=session.user_id, session_id=session.id)


def run_on(worker_id: str, simulator: Simulator) -> int:
    """Claim the simulator for `worker_id` and mark it running, as a worker does; returns the lease epoch."""
    claim = services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    assert claim is not None
    epoch = claim.epoch
    ran = services.simulator_mark_running(simulator_id=simulator.id, worker_id=worker_id, epoch=epoch, reason="up")
    assert ran
    return epoch


def lapse_lease(simulator: Simulator) -> None:
    Simulator.objects.filter(pk=simulator.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def listen_to_user(user_id: int) -> tuple[object, str]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user_id), channel)
    return layer, channel


def test_starting_creates_one_starting_simulator_and_tells_the_users_connections() -> None:
    make_worker()
    session = make_session()
    layer, channel = listen_to_user(session.user_id)
    simulator = start(session)
    assert simulator.status == SimulatorStatus.STARTING and simulator.worker is None and simulator.version == 1
    event = async_to_sync(layer.receive)(channel)
    assert event["type"] == "session.push" and event["kind"] == "simulator_status_update"
    message = json.loads(event["payload"])
    assert message["simulatorStatus"] == "starting" and message["simulatorId"] == str(simulator.id)
    assert message["sessionId"] == str(session.id)
    assert event["simulator"]["version"] == 1 and event["simulator"]["status"] == "starting"
    # The sessions floor's copy, which handshakes read, says the same.
    summary = simulator_summary_of_user(user_id=session.user_id)
    assert (summary.status, summary.simulator_id, summary.version) == ("starting", str(simulator.id), 1)
    # Numbered in the session's stream, so a client that misses it gets it on `reconnect`.
    epoch, seq = event["positions"][str(session.id)]
    assert seq >= 1 and epoch


def test_starting_without_a_live_worker_is_refused_as_unavailable() -> None:
    worker_id = make_worker()
    SimulatorWorker.objects.filter(pk=worker_id).update(heartbeat_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ProtocolError) as refused:
        start(make_session())
    assert refused.value.code == SimulatorCode.SIMULATOR_UNAVAILABLE
    assert not Simulator.objects.exists()


def test_a_user_gets_one_live_simulator_even_from_two_sessions() -> None:
    make_worker()
    session = make_session()
    other_session = make_session(session.user)
    first = start(session)
    for attempt in (session, other_session):
        with pytest.raises(ProtocolError) as refused:
            start(attempt)
        assert refused.value.code == SimulatorCode.SIMULATOR_ALREADY_RUNNING
        assert str(first.id) in refused.value.message
    assert Simulator.objects.count() == 1


def test_a_claim_is_exclusive_until_the_lease_lapses_and_then_fences_out_the_old_holder() -> None:
    first, second = make_worker(), make_worker()
    simulator = start(make_session())
    claim = services.simulator_claim(simulator_id=simulator.id, worker_id=first)
    assert claim is not None and claim.recovered_from is None
    assert services.simulator_mark_running(simulator_id=simulator.id, worker_id=first, epoch=claim.epoch, reason="up")
    assert services.simulator_claim(simulator_id=simulator.id, worker_id=second) is None

    lapse_lease(simulator)
    adoption = services.simulator_claim(simulator_id=simulator.id, worker_id=second)
    assert adoption is not None and adoption.recovered_from == first and adoption.epoch == claim.epoch + 1
    assert adoption.status == SimulatorStatus.STARTING  # clients see it recover

    report = services.worker_heartbeat(worker_id=first, held={simulator.id: HeldSimulator(claim.epoch, {"ticks": 9})})
    assert report.lost == {simulator.id}
    assert not services.simulator_finish_stop(
        simulator_id=simulator.id, worker_id=first, epoch=claim.epoch, state={}, reason="late"
    )
    simulator.refresh_from_db()
    assert simulator.worker_id == second and simulator.state == {}


def test_a_heartbeat_renews_the_lease_checkpoints_state_and_reports_a_stop_request() -> None:
    worker = make_worker()
    session = make_session()
    simulator = start(session)
    epoch = run_on(worker, simulator)
    before = Simulator.objects.get(pk=simulator.pk).lease_expires_at

    report = services.worker_heartbeat(worker_id=worker, held={simulator.id: HeldSimulator(epoch, {"ticks": 3})})
    simulator.refresh_from_db()
    assert report.kept == {simulator.id} and simulator.state == {"ticks": 3}
    assert simulator.lease_expires_at > before

    stop = services.simulator_stop(user_id=session.user_id, reason="by the test")
    assert stop.status == SimulatorStatus.STOPPING
    report = services.worker_heartbeat(worker_id=worker, held={simulator.id: HeldSimulator(epoch, None)})
    assert report.stop_requested == {simulator.id}
    assert services.simulator_finish_stop(simulator_id=simulator.id, worker_id=worker, epoch=epoch, state={"ticks": 4})
    simulator.refresh_from_db()
    assert simulator.status == SimulatorStatus.STOPPED and simulator.worker is None and simulator.state == {"ticks": 4}
    assert simulator.reason == "by the test" and simulator.stopped_at is not None


def test_stopping_a_simulator_no_worker_holds_is_immediate() -> None:
    make_worker()
    session = make_session()
    simulator = start(session)
    stop = services.simulator_stop(user_id=session.user_id, reason="changed my mind")
    assert stop.status == SimulatorStatus.STOPPED
    with pytest.raises(ProtocolError) as refused:
        services.simulator_stop(user_id=session.user_id, reason="again")
    assert refused.value.code == SimulatorCode.SIMULATOR_NOT_RUNNING
    assert Simulator.objects.get(pk=simulator.pk).status == SimulatorStatus.STOPPED


def test_a_released_simulator_is_taken_over_without_a_status_change() -> None:
    leaving, staying = make_worker(), make_worker()
    session = make_session()
    simulator = start(session)
    epoch = run_on(leaving, simulator)
    version = Simulator.objects.get(pk=simulator.pk).version

    released = services.worker_release(worker_id=leaving, held={simulator.id: HeldSimulator(epoch, {"ticks": 7})})
    assert released == [simulator.id]
    assert SimulatorWorker.objects.get(pk=leaving).stopped_at is not None
    taken = services.simulator_claim(simulator_id=simulator.id, worker_id=staying)
    assert taken is not None and taken.recovered_from is None and taken.status == SimulatorStatus.RUNNING
    assert taken.state == {"ticks": 7}
    assert Simulator.objects.get(pk=simulator.pk).version == version


@override_settings(SIMULATOR_ORPHAN_GRACE_MS=0)
def test_simulators_no_worker_holds_past_the_grace_show_error_and_stopping_ones_stop() -> None:
    worker = make_worker()
    running_session, stopping_session = make_session(), make_session()
    running, stopping = start(running_session), start(stopping_session)
    for simulator in (running, stopping):
        run_on(worker, simulator)
    services.simulator_stop(user_id=stopping_session.user_id, reason="asked to stop")
    lapse_lease(running)
    lapse_lease(stopping)

    assert services.simulators_fail_orphaned() == 2
    running.refresh_from_db()
    stopping.refresh_from_db()
    assert running.status == SimulatorStatus.ERROR and "no simulator worker" in running.error
    assert stopping.status == SimulatorStatus.STOPPED and stopping.reason == "asked to stop"
    assert services.simulators_fail_orphaned() == 0


@override_settings(SIMULATOR_IDLE_TIMEOUT_S=60)
def test_a_simulator_is_idle_only_when_no_session_of_its_user_was_seen_within_the_timeout() -> None:
    worker = make_worker()
    session = make_session()
    other_session = make_session(session.user)
    simulator = start(session)
    run_on(worker, simulator)
    long_ago = timezone.now() - timedelta(minutes=5)
    Simulator.objects.filter(pk=simulator.pk).update(status_changed_at=long_ago)
    TradingSession.objects.filter(pk=session.pk).update(last_seen_at=long_ago)

    assert selectors.simulators_idle(worker_id=worker, now=timezone.now()) == []  # the other device is around
    TradingSession.objects.filter(pk=other_session.pk).update(last_seen_at=long_ago)
    assert selectors.simulators_idle(worker_id=worker, now=timezone.now()) == [simulator.id]


def test_ending_a_session_stops_the_simulator_it_started() -> None:
    make_worker()
    session = make_session()
    simulator = start(session)
    assert services.simulator_stop_for_session(session_id=session.id, reason="session stopped")
    assert not services.simulator_stop_for_session(session_id=session.id, reason="again")
    assert Simulator.objects.get(pk=simulator.pk).status == SimulatorStatus.STOPPED
