"""The trader's clock: settings applied once by their version, steps counted down, a seek kept until
the market makes it, and a run resumed from its checkpoint with the requests made since."""

from __future__ import annotations

from simulator_app.clock import Clock, ClockSettings


def test_settings_round_trip_through_their_state() -> None:
    for settings in (
        ClockSettings(),
        ClockSettings(speed=None, paused=False, version=3),
        ClockSettings(speed=250.0, paused=True, version=4, step=10),
        ClockSettings(speed=1.0, paused=True, version=5, seek_ms=1_700_000_000_000),
    ):
        assert ClockSettings.from_state(settings.to_state()) == settings


def test_a_request_is_applied_once_by_its_version() -> None:
    clock = Clock(ClockSettings())
    step = ClockSettings(paused=True, version=1, step=3)

    assert clock.apply(step) is True
    assert clock.apply(step) is False  # the same request again (a lease renewal re-reading it)
    assert clock.steps_left == 3 and clock.playing


def test_a_step_counts_down_with_the_bars_shown_and_stops_at_the_last() -> None:
    clock = Clock(ClockSettings())
    clock.apply(ClockSettings(paused=True, version=1, step=5))

    clock.shown(0, 1000, last=False)
    clock.shown(1, 2000, last=False)
    assert clock.steps_left == 3 and clock.playing
    clock.shown(2, 3000, last=True)

    assert clock.steps_left == 0 and clock.finished and not clock.playing


def test_a_paused_clock_does_not_play_and_a_playing_one_does() -> None:
    clock = Clock(ClockSettings(paused=True))
    assert not clock.playing
    clock.apply(ClockSettings(paused=False, version=1))
    assert clock.playing


def test_a_seek_waits_for_the_market_and_reopens_a_finished_replay() -> None:
    clock = Clock(ClockSettings(paused=True), position=9, time_ms=9000, finished=True)

    clock.apply(ClockSettings(paused=True, version=1, seek_ms=3000))

    assert clock.seek_ms == 3000 and not clock.finished and clock.playing


def test_a_resumed_clock_keeps_its_checkpoint_and_applies_only_newer_requests() -> None:
    checkpoint = Clock(ClockSettings(speed=10.0, paused=False, version=2), position=41, time_ms=41_000, applied=2)

    same = Clock.resume(checkpoint.to_state(), ClockSettings(speed=10.0, paused=False, version=2))
    newer = Clock.resume(checkpoint.to_state(), ClockSettings(speed=10.0, paused=True, version=3, step=2))

    assert (same.position, same.time_ms, same.steps_left, same.settings.speed) == (41, 41_000, 0, 10.0)
    assert (newer.position, newer.applied, newer.steps_left, newer.settings.paused) == (41, 3, 2, True)


def test_a_new_run_starts_before_its_first_bar() -> None:
    clock = Clock.resume(None, ClockSettings())

    assert clock.position == -1 and clock.time_ms is None and not clock.finished


def test_in_lock_step_a_shown_bar_waits_for_its_acknowledgement() -> None:
    clock = Clock(ClockSettings(speed=None, paused=False, lockstep=True))
    assert not clock.waiting  # nothing shown yet: the first bar goes out at once

    clock.shown(0, 1000, last=False)
    assert clock.waiting
    clock.acknowledged = 1  # bar 0 is seq 1
    assert not clock.waiting
    clock.shown(1, 2000, last=False)
    assert clock.waiting


def test_a_step_or_seek_asked_for_does_not_wait_for_an_acknowledgement() -> None:
    clock = Clock(ClockSettings(paused=True, lockstep=True), position=4, time_ms=4000)

    clock.apply(ClockSettings(paused=True, lockstep=True, version=1, step=2))
    assert not clock.waiting
    clock.apply(ClockSettings(paused=True, lockstep=True, version=2, seek_ms=0))
    assert not clock.waiting
