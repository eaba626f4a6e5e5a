"""The sessions floor's copy of each user's newest simulator: kept by every status change, and
filled for existing data by the migration that made it."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from sessions_app.models import UserSimulatorStatus
from sessions_app.selectors import simulator_summary_of_user
from simulator_app import services
from tests.support.factories import make_session, make_worker

pytestmark = pytest.mark.django_db

copy_migration = importlib.import_module("simulator_app.migrations.0004_copy_simulator_statuses")


def test_every_status_change_keeps_the_copy_a_handshake_reads() -> None:
    worker_id = make_worker()
    session = make_session()
    simulator = services.simulator_start(user_id=session.user_id, session_id=session.id)
    claim = services.simulator_claim(simulator_id=simulator.id, worker_id=worker_id)
    assert claim is not None
    services.simulator_mark_running(simulator_id=simulator.id, worker_id=worker_id, epoch=claim.epoch, reason="up")

    summary = simulator_summary_of_user(user_id=session.user_id)
    simulator.refresh_from_db()
    assert (summary.status, summary.simulator_id, summary.version) == ("running", str(simulator.id), simulator.version)


def test_the_migration_copies_each_users_newest_simulator() -> None:
    make_worker()
    session = make_session()
    first = services.simulator_start(user_id=session.user_id, session_id=session.id)
    services.simulator_stop(user_id=session.user_id, reason="done")
    second = services.simulator_start(user_id=session.user_id, session_id=session.id)
    UserSimulatorStatus.objects.all().delete()  # as before the migration

    copy_migration.copy_statuses(apps, None)

    summary = simulator_summary_of_user(user_id=session.user_id)
    assert first.id != second.id
    assert (summary.status, summary.simulator_id) == ("starting", str(second.id))
