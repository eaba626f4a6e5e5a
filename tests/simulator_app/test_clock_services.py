"""The trader's clock requests against the real ORM: each recorded with the next version (what is left
out stays), sent to the worker holding the simulator, and refused with its code (the shared feed, a
step while playing, a seek outside the range, no live simulator), nothing changed then."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from sessions_app.models import TradingSession
from sessions_app.realtime.errors import ProtocolError
from simulator_app import services
from simulator_app.clock import ClockSettings
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def a_worker_is_alive() -> str:
    return make_worker("w-clock")


REPLAY = {"source": "replay", "datasetId": "1", "symbols": ["AAA"], "start": 1_000, "end": 9_000, "seed": 1}


def replay(session: TradingSession, **clock: object) -> Simulator:
    return services.simulator_start(
        user_id=session.user_id, session_id=session.id, market=REPLAY, clock=ClockSettings(**clock)
    )


def refused(call: object, **fields: object) -> str:
    with pytest.raises(ProtocolError) as error:
        call(**fields)  # type: ignore[operator]
    return str(error.value.code)


def test_a_setting_left_out_stays_and_each_request_takes_the_next_version() -> None:
    session = make_session()
    replay(session, speed=None, paused=False, lockstep=True)

    _, first = services.simulator_clock_set(user_id=session.user_id, paused=True)
    _, second = services.simulator_clock_set(user_id=session.user_id, speed=250.0)

    assert (first.speed, first.paused, first.lockstep, first.version) == (None, True, True, 1)
    assert (second.speed, second.paused, second.lockstep, second.version) == (250.0, True, True, 2)
    stored = ClockSettings.from_state(Simulator.objects.get(user_id=session.user_id).clock)
    assert stored == second


def test_a_request_goes_to_the_worker_holding_the_simulator() -> None:
    session = make_session()
    worker_id = "w-clock"
    simulator = replay(session)
    services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    layer = get_channel_layer()

    services.simulator_clock_step(user_id=session.user_id, bars=5)
    command = async_to_sync(layer.receive)(f"test.{worker_id}")

    assert command == {
        "type": "simulator.clock",
        "simulatorId": str(simulator.id),
        "clock": {"speed": 1.0, "paused": True, "version": 1, "step": 5},
    }


def test_clock_requests_are_refused_with_their_codes_and_change_nothing() -> None:
    shared = make_session()
    services.simulator_start(user_id=shared.user_id, session_id=shared.id)
    playing = make_session()
    replay(playing, paused=False)
    nobody = make_session()

    assert refused(services.simulator_clock_set, user_id=shared.user_id, paused=True) == SimulatorCode.CLOCK_UNAVAILABLE
    assert refused(services.simulator_clock_step, user_id=playing.user_id, bars=1) == SimulatorCode.CLOCK_PLAYING
    assert (
        refused(services.simulator_clock_seek, user_id=playing.user_id, time_ms=9_001)
        == SimulatorCode.TIME_OUT_OF_RANGE
    )
    assert (
        refused(services.simulator_clock_seek, user_id=nobody.user_id, time_ms=5_000)
        == SimulatorCode.SIMULATOR_NOT_RUNNING
    )
    assert ClockSettings.from_state(Simulator.objects.get(user_id=playing.user_id).clock).version == 0


def test_a_seek_inside_the_range_is_recorded_once() -> None:
    session = make_session()
    replay(session)

    _, settings = services.simulator_clock_seek(user_id=session.user_id, time_ms=5_000)

    assert (settings.seek_ms, settings.step, settings.version) == (5_000, 0, 1)
