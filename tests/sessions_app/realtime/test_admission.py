"""Admission control: past the in-flight limit a handshake is refused at once with a retry slot;
refused clients are spaced at the measured admission rate; the shutdown hint spreads over the
connections held at the fastest rate seen."""

from __future__ import annotations

import itertools
import random

import pytest
from django.test import override_settings

from sessions_app.realtime.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate(limit: int = 2, minimum_rate: float = 10, clock: Clock | None = None) -> Admission:
    return Admission(limit=limit, minimum_rate=minimum_rate, clock=clock or Clock(), rng=random.Random(7))


def test_a_handshake_past_the_limit_is_refused_and_a_finished_one_frees_its_place() -> None:
    admission = gate(limit=2)

    assert [admission.enter(), admission.enter(), admission.enter()] == [True, True, False]
    admission.leave()
    assert admission.enter() is True
    assert admission.in_flight == 2


def test_a_limit_of_zero_admits_every_handshake() -> None:
    admission = gate(limit=0)

    assert all(admission.enter() for _ in range(1000))


def test_the_rate_is_the_handshakes_completed_in_the_best_recent_second() -> None:
    clock = Clock()
    admission = gate(limit=0, minimum_rate=1, clock=clock)
    for completed in (40, 120, 80):
        for _ in range(completed):
            admission.enter()
            admission.leave()
        clock.now += 1

    assert admission.rate() == 120
    clock.now += 10  # a quiet spell: the measurement ages out to the floor
    assert admission.rate() == 1
    assert admission.peak_rate == 120


def test_refused_clients_get_slots_one_per_rate_interval_after_the_handshakes_under_way() -> None:
    clock = Clock()
    admission = gate(limit=50, minimum_rate=100, clock=clock)
    for _ in range(50):
        admission.enter()

    hints = [admission.retry_after_ms() for _ in range(100)]

    # 50 in flight at 100/s drain in 0.5 s; then one slot every 10 ms, jittered within it.
    assert 500 <= hints[0] <= 510
    assert all(b > a for a, b in itertools.pairwise(hints))
    assert 1490 <= hints[-1] <= 1500


def test_slots_follow_the_measured_rate_not_the_floor() -> None:
    clock = Clock()
    admission = gate(limit=0, minimum_rate=10, clock=clock)
    for _ in range(500):  # 500 completed within one second
        admission.enter()
        admission.leave()
    clock.now += 1

    spaced = [admission.retry_after_ms() for _ in range(500)]

    assert spaced[-1] <= 1000 + 2  # 500 slots at 500/s: all back within a second


@override_settings(SHUTDOWN_RETRY_AFTER_MIN_MS=1000, SHUTDOWN_RETRY_AFTER_MAX_MS=5000)
def test_the_shutdown_hint_keeps_its_range_for_few_connections() -> None:
    admission = gate(minimum_rate=100)

    hints = [admission.shutdown_retry_after_ms(held=50) for _ in range(500)]

    assert min(hints) >= 1000 and max(hints) <= 5000


@override_settings(
    SHUTDOWN_RETRY_AFTER_MIN_MS=1000, SHUTDOWN_RETRY_AFTER_MAX_MS=5000, SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS=30000
)
@pytest.mark.parametrize(("held", "spread_ms"), [(5000, 10000), (20000, 30000)], ids=["spread", "capped"])
def test_the_shutdown_hint_spreads_many_connections_at_the_fastest_rate_seen(held: int, spread_ms: int) -> None:
    clock = Clock()
    admission = gate(limit=0, minimum_rate=100, clock=clock)
    for _ in range(500):
        admission.enter()
        admission.leave()
    clock.now += 1

    hints = [admission.shutdown_retry_after_ms(held=held) for _ in range(2000)]

    assert min(hints) >= 1000 and max(hints) <= 1000 + spread_ms
    assert max(hints) > 1000 + 0.9 * spread_ms  # the whole window is used
