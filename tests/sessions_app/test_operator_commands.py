"""The management commands an operator runs: expire stale sessions, show what is running."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from sessions_app.models import ServerProcess, SessionStatus, TradingSession
from tests.support.factories import make_session

pytestmark = [pytest.mark.django_db]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_expire_sessions_ends_only_the_sessions_past_their_expiry() -> None:
    overdue, current = make_session(), make_session()
    TradingSession.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert run("expire_sessions").strip() == "expired 1 session(s)"
    assert TradingSession.objects.get(pk=overdue.pk).status == SessionStatus.EXPIRED
    assert TradingSession.objects.get(pk=current.pk).status == SessionStatus.ACTIVE


def test_service_status_counts_live_processes_only() -> None:
    make_session()
    now = timezone.now()
    ServerProcess.objects.create(id="live-1", hostname="a", pid=1, reported_at=now, connection_count=3)
    ServerProcess.objects.create(
        id="gone-1", hostname="b", pid=2, reported_at=now - timedelta(hours=1), connection_count=9
    )
    status = json.loads(run("service_status"))
    assert status["connections"] == 3 and status["connectionsByProcess"] == {"live-1": 3}
    assert status["sessionsByStatus"] == {"active": 1}
