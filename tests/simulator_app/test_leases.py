"""The one lease protocol (simulator_app.leases) on a simulator's row: claim, renew, release, and the
epoch that fences out an earlier holder. The feed's row follows the same protocol
(tests/market_app/test_market_feed.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from simulator_app.models import Simulator
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db(transaction=True)]


def unassigned_simulator() -> Simulator:
    """A simulator row no worker holds yet (as simulator_start leaves it)."""
    session = make_session()
    return Simulator.objects.create(user_id=session.user_id, session_id=session.id, lease_expires_at=timezone.now())


def claim(simulator: Simulator, worker_id: str, now: datetime) -> bool:
    with transaction.atomic():
        row = Simulator.objects.select_for_update().get(pk=simulator.pk)
        taken = row.claim(worker_id=worker_id, now=now)
        row.save()
    return taken


def epoch_of(simulator: Simulator) -> int:
    return Simulator.objects.get(pk=simulator.pk).lease_epoch


def is_free(simulator: Simulator, now: datetime) -> bool:
    return Simulator.objects.filter(pk=simulator.pk).free(now).exists()


def test_a_free_row_is_claimed_under_a_new_epoch_and_then_held_against_every_worker() -> None:
    first, second = make_worker(), make_worker()
    simulator = unassigned_simulator()
    now = timezone.now()

    assert claim(simulator, first, now)
    assert epoch_of(simulator) == 1
    assert not claim(simulator, second, now)
    # Not even its holder takes it twice: two loops of one worker racing for it get one claim.
    assert not claim(simulator, first, now)
    assert epoch_of(simulator) == 1


@override_settings(SIMULATOR_LEASE_TTL_MS=10_000)
def test_a_lapsed_lease_is_claimed_by_another_worker_and_fences_out_the_first_holders_writes() -> None:
    first, second = make_worker(), make_worker()
    simulator = unassigned_simulator()
    start = timezone.now()
    assert claim(simulator, first, start)

    later = start + timedelta(seconds=11)
    assert claim(simulator, second, later)
    rows = Simulator.objects.filter(pk=simulator.pk)

    assert rows.held_by(first, 1).renew(now=later) == 0
    assert rows.held_by(first, 1).release(now=later) == 0
    assert rows.held_by(second, 2).renew(now=later) == 1
    row = rows.get()
    assert (row.worker_id, row.lease_epoch, row.lease_expires_at) == (second, 2, later + timedelta(seconds=10))


@override_settings(SIMULATOR_LEASE_TTL_MS=10_000)
def test_renewing_keeps_a_lease_from_lapsing_and_writes_the_given_fields_with_it() -> None:
    worker = make_worker()
    simulator = unassigned_simulator()
    start = timezone.now()
    assert claim(simulator, worker, start)

    renewed_at = start + timedelta(seconds=8)
    assert Simulator.objects.filter(pk=simulator.pk).held_by(worker, 1).renew(now=renewed_at, state={"ticks": 3}) == 1

    assert not is_free(simulator, start + timedelta(seconds=17))
    assert not claim(simulator, make_worker(), start + timedelta(seconds=17))
    assert Simulator.objects.get(pk=simulator.pk).state == {"ticks": 3}


def test_a_released_row_is_free_at_once_for_any_worker() -> None:
    first, second = make_worker(), make_worker()
    simulator = unassigned_simulator()
    now = timezone.now()
    assert claim(simulator, first, now)

    assert Simulator.objects.filter(pk=simulator.pk).held_by(first, 1).release(now=now, state={"ticks": 7}) == 1

    row = Simulator.objects.get(pk=simulator.pk)
    assert row.worker_id is None and row.state == {"ticks": 7}
    assert is_free(simulator, now)
    assert claim(simulator, second, now) and epoch_of(simulator) == 2


def test_free_rows_and_held_rows_agree_in_the_database_and_in_python() -> None:
    worker = make_worker()
    now = timezone.now()
    never_claimed = unassigned_simulator()
    held = unassigned_simulator()
    lapsed = unassigned_simulator()
    held_without_an_end = unassigned_simulator()
    for simulator, expires in ((held, now + timedelta(seconds=5)), (lapsed, now - timedelta(seconds=5))):
        Simulator.objects.filter(pk=simulator.pk).update(worker_id=worker, lease_expires_at=expires)
    Simulator.objects.filter(pk=held_without_an_end.pk).update(worker_id=worker, lease_expires_at=None)

    for simulator, free in ((never_claimed, True), (held, False), (lapsed, True), (held_without_an_end, False)):
        row = Simulator.objects.get(pk=simulator.pk)
        assert is_free(simulator, now) is free
        assert row.is_held(now=now) is not free
