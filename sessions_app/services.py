"""Writes of the session app: tokens, devices, sessions. Keyword-only, typed; they publish
after commit with `push` and `notify` (sessions_app.realtime.publish), and tell the apps above through signals."""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sessions_app import groups, selectors
from sessions_app.auth import check_access_token
from sessions_app.errors import HttpCode, SessionCode
from sessions_app.events import ConnectionCloseEvent, ConnectionReplaceEvent, SessionEndedEvent, TokenRevokedEvent
from sessions_app.messages import DeviceIdInvalidated
from sessions_app.models import (
    AccessToken,
    Device,
    ServerProcess,
    SessionStatus,
    TradingSession,
    UserSimulatorStatus,
)
from sessions_app.realtime.errors import CloseCode, ErrorCode, ProtocolError
from sessions_app.realtime.message_base import now_ms
from sessions_app.realtime.publish import notify, push
from sessions_app.signals import session_ended, session_ended_stopped_something
from sessions_app.tokens import (
    hash_access_token,
    new_access_token,
    new_session_nonce,
    session_id_from_token,
    session_token_for,
    session_token_matches,
)

if TYPE_CHECKING:
    # django-stubs' name for the AUTH_USER_MODEL (its plugin reads the setting): any user model will do.
    from django.contrib.auth.models import _User as User

# --- Tokens and devices -------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: str
    device: Device
    expires_at: datetime
    token_id: int = 0


def device_register(*, user: User, device_id: str | None) -> Device:
    """Return the user's device with this ID, registering it (or a new random ID) if unknown."""
    if device_id is None:
        return Device.objects.create(user=user, device_id=f"dev-{uuid.uuid4().hex}")
    device, _ = Device.objects.get_or_create(device_id=device_id, defaults={"user": user})
    if device.user_id != user.pk:
        raise ProtocolError(HttpCode.DEVICE_TAKEN)
    if not device.is_valid:
        raise ProtocolError(SessionCode.DEVICE_INVALIDATED)
    return device


@transaction.atomic
def token_issue(*, user: User, device_id: str | None, ttl_s: int | None = None) -> IssuedToken:
    device = device_register(user=user, device_id=device_id)
    raw = new_access_token()
    expires_at = timezone.now() + timedelta(seconds=ttl_s if ttl_s is not None else settings.AUTH_TOKEN_TTL_S)
    record = AccessToken.objects.create(
        key_hash=hash_access_token(raw), key_prefix=raw[:8], user=user, device=device, expires_at=expires_at
    )
    return IssuedToken(token=raw, device=device, expires_at=expires_at, token_id=record.pk)


def token_revoke(*, token: AccessToken) -> None:
    """Revoke a token; the sockets living on it end (at once, or within PRESENCE_FLUSH_INTERVAL_S)."""
    if AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        revoked: TokenRevokedEvent = {"type": "token.revoked", "tokenId": token.pk}
        notify(group=groups.user_group(token.user_id), event=revoked)


def token_refresh(*, token_id: int) -> IssuedToken:
    """A new token for the device of a token that is still good (a socket's `refresh_token`).

    The old token keeps working until its own expiry: the client may still be using it over HTTP.
    """
    token = check_access_token(selectors.access_token_by_pk(token_id))
    return token_issue(user=token.user, device_id=token.device.device_id)


def tokens_revoked(*, token_ids: list[int]) -> list[int]:
    """Which of these tokens no longer hold: revoked, deleted, or their user disabled."""
    good = set(
        AccessToken.objects.filter(pk__in=token_ids, revoked_at__isnull=True, user__is_active=True).values_list(
            "pk", flat=True
        )
    )
    return [token_id for token_id in token_ids if token_id not in good]


@transaction.atomic
def device_invalidate(*, device: Device, reason: str) -> Device:
    """Invalidate a device: revoke its tokens, stop its session, and tell its live connections."""
    now = timezone.now()
    updated = Device.objects.filter(pk=device.pk, invalidated_at__isnull=True).update(
        invalidated_at=now, invalidated_reason=reason[:200]
    )
    device.refresh_from_db()
    if not updated:
        return device
    AccessToken.objects.filter(device=device, revoked_at__isnull=True).update(revoked_at=now)
    session = selectors.active_session_of_device(device.pk)
    if session is not None:
        # The device's connections hear `device_id_invalidated` instead of `session.ended`.
        _session_end(session=session, status=SessionStatus.STOPPED, reason="device invalidated", announce=False)
        _tell_session_ended(session, reason="device invalidated")
    push(
        group=groups.user_group(device.user_id),
        device_key=device.pk,
        sessions=[str(session.id)] if session is not None else [],
        message=DeviceIdInvalidated(
            deviceId=device.device_id, reason=device.invalidated_reason or None, timestamp=now_ms()
        ),
        closes=CloseCode.DEVICE_REJECTED,  # nothing may follow it
    )
    return device


# --- Sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class AttachedSession:
    session: TradingSession
    session_token: str
    resumed: bool
    generation: int


def _replace_event(*, device_key: int, generation: int, session_id: str) -> ConnectionReplaceEvent:
    return {"type": "connection.replace", "deviceKey": device_key, "generation": generation, "sessionId": session_id}


def _expire_if_due(session: TradingSession, now: datetime) -> bool:
    if session.status == SessionStatus.ACTIVE and session.expires_at <= now:
        _session_end(session=session, status=SessionStatus.EXPIRED, reason="session reached expiresAt")
        return True
    return False


def session_attach(*, user_id: int, device_pk: int) -> AttachedSession:
    """Give a new connection of `device` its session: the active one, or a new one.

    Also takes the next connection generation of the device and announces it, so
    an older connection of the same device (on any process) closes itself.
    """
    (outcome,) = sessions_attach(devices=[(user_id, device_pk)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def sessions_attach(*, devices: list[tuple[int, int]]) -> list[AttachedSession | ProtocolError]:
    """session_attach for several (user_id, device pk) handshakes at once: one transaction and a
    query per table for them all, instead of four queries and a commit each."""
    outcomes: dict[int, AttachedSession | ProtocolError] = {}
    for indices in _rounds(devices):
        wanted = [devices[i] for i in indices]
        try:
            attached: list[AttachedSession | ProtocolError] = list(_sessions_attach_once(wanted))
        except IntegrityError:
            # Another process opened one of these devices' session meanwhile: each on its own, with retries.
            attached = [_session_attach_retrying(user_id=user_id, device_pk=device_pk) for user_id, device_pk in wanted]
        for i, outcome in zip(indices, attached, strict=True):
            outcomes[i] = outcome
    return [outcomes[i] for i in range(len(devices))]  # the rounds cover every index


def _rounds(devices: list[tuple[int, int]]) -> list[list[int]]:
    """Indices grouped so a device appears once per round: each of its connects takes its own generation."""
    rounds: list[list[int]] = []
    seen: collections.Counter[int] = collections.Counter()
    for i, (_, device_pk) in enumerate(devices):
        round_ = seen[device_pk]
        seen[device_pk] += 1
        if round_ == len(rounds):
            rounds.append([])
        rounds[round_].append(i)
    return rounds


def _session_attach_retrying(*, user_id: int, device_pk: int) -> AttachedSession | ProtocolError:
    for _ in range(3):
        try:
            (outcome,) = _sessions_attach_once([(user_id, device_pk)])
            return outcome
        except IntegrityError:
            # Two connects of one device raced to create its session; the loser retries and joins it.
            continue
    return ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "could not open a session, try again")


@transaction.atomic
def _sessions_attach_once(devices: list[tuple[int, int]]) -> list[AttachedSession | ProtocolError]:
    now = timezone.now()
    pks = [device_pk for _, device_pk in devices]
    Device.objects.filter(pk__in=pks).update(connection_generation=F("connection_generation") + 1, last_seen_at=now)
    generations = dict(Device.objects.filter(pk__in=pks).values_list("pk", "connection_generation"))
    active = {session.device_id: session for session in selectors.active_sessions_of_devices(pks)}
    outcomes: list[AttachedSession | ProtocolError] = []
    created: list[TradingSession] = []
    for user_id, device_pk in devices:
        generation = generations.get(device_pk)
        if generation is None:  # deleted since the token was checked
            outcomes.append(ProtocolError(SessionCode.DEVICE_UNKNOWN))
            continue
        session = active.get(device_pk)
        resumed = session is not None and not _expire_if_due(session, now)
        if session is None or not resumed:
            session = TradingSession(
                user_id=user_id,
                device_id=device_pk,
                expires_at=now + timedelta(seconds=settings.SESSION_TTL_S),
                token_nonce=new_session_nonce(),
                last_seen_at=now,
            )
            created.append(session)
        # The device's first connection has no older one anywhere to replace.
        if generation > 1:
            replace = _replace_event(device_key=device_pk, generation=generation, session_id=str(session.id))
            notify(group=groups.user_group(user_id), event=replace)
        outcomes.append(
            AttachedSession(
                session=session,
                session_token=session_token_for(session.id, session.token_nonce),
                resumed=resumed,
                generation=generation,
            )
        )
    TradingSession.objects.bulk_create(created)
    return outcomes


@dataclass(frozen=True)
class StopOutcome:
    stopped: bool
    simulator_stopped: bool
    message: str


def _session_end(*, session: TradingSession, status: SessionStatus, reason: str, announce: bool = True) -> bool:
    updated = TradingSession.objects.filter(pk=session.pk, status=SessionStatus.ACTIVE).update(
        status=status, ended_at=timezone.now(), end_reason=reason[:200]
    )
    if not updated:
        return False
    session.refresh_from_db()
    if announce:
        ended: SessionEndedEvent = {
            "type": "session.ended",
            "sessionId": str(session.id),
            # A choice's value is str to mypy; only STOPPED and EXPIRED end a session.
            "status": status.value,  # type: ignore[typeddict-item]
            "reason": reason,
        }
        notify(group=groups.user_group(session.user_id), event=ended)
    return True


def _tell_session_ended(session: TradingSession, *, reason: str) -> bool:
    """Tell the apps above (in this transaction); True when one stopped something (a simulator)."""
    return session_ended_stopped_something(
        session_ended.send(sender=TradingSession, session_id=session.id, reason=reason)
    )


@transaction.atomic
def session_stop(*, session: TradingSession, reason: str) -> StopOutcome:
    """Stop an active session and its simulator. Idempotent: an ended session reports stopped=False."""
    if not _session_end(session=session, status=SessionStatus.STOPPED, reason=reason):
        session.refresh_from_db()
        return StopOutcome(stopped=False, simulator_stopped=False, message=f"session already {session.status}")
    simulator_stopped = _tell_session_ended(session, reason=reason)
    return StopOutcome(stopped=True, simulator_stopped=simulator_stopped, message="session stopped")


@transaction.atomic
def session_expire(*, session: TradingSession) -> bool:
    session = TradingSession.objects.select_for_update().get(pk=session.pk)
    if _expire_if_due(session, timezone.now()):
        _tell_session_ended(session, reason="session expired")
        return True
    return False


def sessions_expire_due(*, now: datetime | None = None) -> int:
    """Expire every active session past its expiresAt (run periodically by each server process)."""
    now = now or timezone.now()
    count = 0
    for session in TradingSession.objects.filter(status=SessionStatus.ACTIVE, expires_at__lte=now):
        count += int(session_expire(session=session))
    return count


@dataclass(frozen=True)
class ResumeOutcome:
    success: bool
    session: TradingSession | None
    message: str


def session_resume(*, user_id: int, device_pk: int, session_token: str) -> ResumeOutcome:
    """Check a `reconnect`: is this token's session this device's, and still active?"""
    (outcome,) = sessions_resume(requests=[(user_id, device_pk, session_token)])
    return outcome


def sessions_resume(*, requests: list[tuple[int, int, str]]) -> list[ResumeOutcome]:
    """session_resume for several (user_id, device pk, session token) at once: one query for
    their sessions (a restarted process's clients all come back together)."""
    ids = [session_id_from_token(token) for _, _, token in requests]
    wanted = [session_id for session_id in ids if session_id]
    found = (
        {str(s.pk): s for s in TradingSession.objects.select_related("device").filter(pk__in=wanted)} if wanted else {}
    )
    return [
        _resume_one(user_id=user_id, device_pk=device_pk, session_token=token, session=found.get(str(session_id)))
        for (user_id, device_pk, token), session_id in zip(requests, ids, strict=True)
    ]


def _resume_one(*, user_id: int, device_pk: int, session_token: str, session: TradingSession | None) -> ResumeOutcome:
    if session is None or not session_token_matches(session_token, session.id, session.token_nonce):
        return ResumeOutcome(False, None, "unknown session token")
    if session.user_id != user_id or session.device_id != device_pk:
        return ResumeOutcome(False, None, "the session belongs to another device")
    if session.status == SessionStatus.ACTIVE and _expire_if_due(session, timezone.now()):
        session.refresh_from_db()
    if session.status != SessionStatus.ACTIVE:
        return ResumeOutcome(False, session, f"session {session.status}: {session.end_reason}")
    return ResumeOutcome(True, session, "session resumed")


def presence_flush(*, session_ids: list[uuid.UUID] | list[str], device_pks: list[int], seen_at: datetime) -> None:
    """Persist last-seen times collected in memory since the previous flush (one query per table)."""
    if session_ids:
        TradingSession.objects.filter(pk__in=session_ids).update(last_seen_at=seen_at)
    if device_pks:
        Device.objects.filter(pk__in=device_pks).update(last_seen_at=seen_at)


# --- Server processes (the admin's live view) -----------------------------------


def server_process_report(*, process_id: str, hostname: str, pid: int, connections: list[dict]) -> None:
    """Record what a daphne process holds now (called every presence flush)."""
    ServerProcess.objects.update_or_create(
        pk=process_id,
        defaults={
            "hostname": hostname[:100],
            "pid": pid,
            "reported_at": timezone.now(),
            "stopped_at": None,
            "connection_count": len(connections),
            "connections": connections,
        },
    )


def server_process_stopped(*, process_id: str) -> None:
    ServerProcess.objects.filter(pk=process_id).update(stopped_at=timezone.now(), connection_count=0, connections=[])


def connection_close_by_operator(*, channel_name: str, operator: str) -> None:
    close: ConnectionCloseEvent = {"type": "connection.close", "reason": f"closed by operator {operator}"}
    notify(channel=channel_name, event=close)


def simulator_status_record(
    *,
    user_id: int,
    simulator_id: uuid.UUID,
    status: str,
    profile: str | None,
    created_at: datetime,
    version: int,
    market: str = "shared",
) -> None:
    """Keep the copy of the user's newest simulator that the session messages show (called by the
    simulator app in the transaction of every status change)."""
    UserSimulatorStatus.objects.update_or_create(
        user_id=user_id,
        defaults={
            "simulator_id": simulator_id,
            "status": status,
            "profile": profile,
            "market": market,
            "created_at": created_at,
            "version": version,
        },
    )
