"""Session services: one active session per device, resume by session token, stop and expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from sessions_app import groups, selectors, services
from sessions_app.connection_state import NO_SIMULATOR
from sessions_app.models import SessionStatus, TradingSession
from tests.support.factories import issue_token, make_user

pytestmark = pytest.mark.django_db


def test_attaching_twice_gives_the_same_session_and_a_newer_generation() -> None:
    issued = issue_token()
    first = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    second = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    assert first.session.id == second.session.id
    assert (first.resumed, second.resumed) == (False, True)
    assert second.generation == first.generation + 1
    assert first.session_token == second.session_token


def test_a_stopped_session_is_replaced_by_a_new_one_on_the_next_attach() -> None:
    issued = issue_token()
    first = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    outcome = services.session_stop(session=first.session, reason="done")
    assert outcome.stopped and not outcome.simulator_stopped
    again = services.session_stop(session=first.session, reason="done")
    assert not again.stopped and again.message == "session already stopped"
    second = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    assert second.session.id != first.session.id and not second.resumed


def test_an_overdue_session_expires_on_attach_and_in_the_sweep() -> None:
    issued = issue_token()
    first = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk).session
    TradingSession.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    second = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk).session
    first.refresh_from_db()
    assert first.status == SessionStatus.EXPIRED and second.id != first.id
    TradingSession.objects.filter(pk=second.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.sessions_expire_due() == 1
    second.refresh_from_db()
    assert second.status == SessionStatus.EXPIRED


def test_resume_accepts_only_this_devices_own_session_token() -> None:
    user = make_user()
    phone, laptop = issue_token(user, device_id="p"), issue_token(user, device_id="l")
    attached = services.session_attach(user_id=user.pk, device_pk=phone.device.pk)
    ok = services.session_resume(user_id=user.pk, device_pk=phone.device.pk, session_token=attached.session_token)
    assert ok.success and ok.session is not None and ok.session.id == attached.session.id
    elsewhere = services.session_resume(
        user_id=user.pk, device_pk=laptop.device.pk, session_token=attached.session_token
    )
    assert not elsewhere.success and "another device" in elsewhere.message
    tampered = attached.session_token[:-1] + ("0" if attached.session_token[-1] != "0" else "1")
    assert not services.session_resume(user_id=user.pk, device_pk=phone.device.pk, session_token=tampered).success
    assert not services.session_resume(user_id=user.pk, device_pk=phone.device.pk, session_token="garbage").success


def test_presence_is_written_in_one_batch() -> None:
    issued = issue_token()
    session = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk).session
    seen = timezone.now() + timedelta(minutes=5)
    services.presence_flush(session_ids=[session.id], device_pks=[issued.device.pk], seen_at=seen)
    session.refresh_from_db()
    issued.device.refresh_from_db()
    assert session.last_seen_at == seen and issued.device.last_seen_at == seen


def test_only_a_devices_later_connections_tell_the_older_ones_to_close(monkeypatch: pytest.MonkeyPatch) -> None:
    notices: list[tuple[str, dict]] = []
    monkeypatch.setattr(services, "notify", lambda *, group, event: notices.append((group, event)))
    issued = issue_token()
    first = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    assert (first.generation, notices) == (1, [])  # nobody to replace: no Redis round trip
    second = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    assert notices == [
        (
            groups.user_group(issued.device.user_id),
            {
                "type": "connection.replace",
                "deviceKey": issued.device.pk,
                "generation": second.generation,
                "sessionId": str(second.session.id),
            },
        )
    ]


def test_an_attach_keeps_the_sessions_copy_of_the_users_simulator_current() -> None:
    issued = issue_token()
    user_id = issued.device.user_id
    never = selectors.simulator_summary_of_user(user_id=user_id)
    simulator_id = uuid.uuid4()
    services.simulator_status_record(
        user_id=user_id,
        simulator_id=simulator_id,
        status="running",
        profile="harsh",
        created_at=timezone.now(),
        version=3,
    )

    summary = selectors.simulator_summaries_of_users(user_ids=[user_id])[user_id]
    assert never == NO_SIMULATOR
    assert (summary.status, summary.simulator_id, summary.profile, summary.version) == (
        "running",
        str(simulator_id),
        "harsh",
        3,
    )


def test_reconnects_checked_together_get_each_its_own_answer(django_assert_max_num_queries: Any) -> None:
    issued, other = issue_token(), issue_token()
    mine = services.session_attach(user_id=issued.device.user_id, device_pk=issued.device.pk)
    theirs = services.session_attach(user_id=other.device.user_id, device_pk=other.device.pk)
    requests = [
        (issued.device.user_id, issued.device.pk, mine.session_token),
        (issued.device.user_id, issued.device.pk, theirs.session_token),  # another device's session
        (issued.device.user_id, issued.device.pk, "garbage"),
        (other.device.user_id, other.device.pk, theirs.session_token),
    ]

    with django_assert_max_num_queries(1):
        outcomes = services.sessions_resume(requests=requests)

    assert [o.success for o in outcomes] == [True, False, False, True]
    assert [o.message for o in outcomes[1:3]] == ["the session belongs to another device", "unknown session token"]
    assert outcomes[0].session is not None and outcomes[0].session.pk == mine.session.pk
