"""Reads of the session app. No writes here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.utils import timezone

from sessions_app.connection_state import NO_SIMULATOR, SimulatorSummary
from sessions_app.models import AccessToken, Device, ServerProcess, SessionStatus, TradingSession, UserSimulatorStatus
from sessions_app.tokens import hash_access_token


@dataclass(frozen=True, slots=True)
class Credential:
    """What a handshake needs of a token, its user and its device: plain values, no model instances."""

    token_id: int
    expires_at: datetime
    revoked_at: datetime | None
    user_id: int
    username: str
    user_is_active: bool
    device_key: int
    device_id: str
    device_invalidated_at: datetime | None
    device_invalidated_reason: str

    @classmethod
    def of(cls, token: AccessToken) -> Credential:
        return cls(
            token_id=token.pk,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            user_id=token.user.pk,
            username=token.user.get_username(),
            user_is_active=token.user.is_active,
            device_key=token.device.pk,
            device_id=token.device.device_id,
            device_invalidated_at=token.device.invalidated_at,
            device_invalidated_reason=token.device.invalidated_reason,
        )


def access_token_by_raw(raw: str) -> AccessToken | None:
    return AccessToken.objects.select_related("user", "device").filter(key_hash=hash_access_token(raw)).first()


def credentials_by_hash(key_hashes: list[str]) -> dict[str, Credential]:
    """Tokens by their SHA-256 with their user and device, as plain values (one query for a batch
    of handshakes; no model instances to build)."""
    username = f"user__{get_user_model().USERNAME_FIELD}"
    rows = AccessToken.objects.filter(key_hash__in=set(key_hashes)).values_list(
        "key_hash",
        "pk",
        "expires_at",
        "revoked_at",
        "user_id",
        username,
        "user__is_active",
        "device_id",
        "device__device_id",
        "device__invalidated_at",
        "device__invalidated_reason",
    )
    return {key_hash: Credential(*fields) for key_hash, *fields in rows}


def access_token_by_pk(pk: int) -> AccessToken | None:
    return AccessToken.objects.select_related("user", "device").filter(pk=pk).first()


def device_by_device_id(device_id: str) -> Device | None:
    return Device.objects.filter(device_id=device_id).first()


def devices_of_user(user_id: int) -> QuerySet[Device]:
    return Device.objects.filter(user_id=user_id).order_by("-created_at")


def session_by_id(session_id: uuid.UUID) -> TradingSession | None:
    return TradingSession.objects.select_related("device").filter(pk=session_id).first()


def active_session_of_device(device_pk: int) -> TradingSession | None:
    return TradingSession.objects.filter(device_id=device_pk, status=SessionStatus.ACTIVE).first()


def active_sessions_of_devices(device_pks: list[int]) -> QuerySet[TradingSession]:
    return TradingSession.objects.filter(device_id__in=device_pks, status=SessionStatus.ACTIVE)


def active_session_ids_of_user(user_id: int) -> list[str]:
    """The streams a push to this user is numbered in (sessions_app.realtime.session_stream)."""
    return [
        str(pk)
        for pk in TradingSession.objects.filter(user_id=user_id, status=SessionStatus.ACTIVE).values_list(
            "pk", flat=True
        )
    ]


def server_process_stale_before() -> datetime:
    """A process that has not reported since (three presence flushes) is taken for dead."""
    return timezone.now() - timedelta(seconds=settings.PRESENCE_FLUSH_INTERVAL_S * 3)


def live_server_processes() -> QuerySet[ServerProcess]:
    """Processes that reported recently and did not say they stopped."""
    return ServerProcess.objects.filter(stopped_at__isnull=True, reported_at__gte=server_process_stale_before())


# What the apps above add to service_counts (each registers in its AppConfig.ready()).
StatusCounts = Callable[[], dict[str, object]]
STATUS_COUNTS: list[StatusCounts] = []


def counted_in_service_status(counts: StatusCounts) -> StatusCounts:
    STATUS_COUNTS.append(counts)
    return counts


def service_counts() -> dict[str, object]:
    """What an operator checks first: connections and sessions, then what each app adds
    (simulators and workers, open orders)."""
    processes = list(live_server_processes().values_list("id", "connection_count"))
    counts: dict[str, object] = {
        "connections": sum(count for _, count in processes),
        "connectionsByProcess": dict(processes),
        "sessionsByStatus": dict(TradingSession.objects.values_list("status").annotate(n=Count("pk"))),
    }
    for more in STATUS_COUNTS:
        counts.update(more())
    return counts


def _summary(row: UserSimulatorStatus) -> SimulatorSummary:
    return SimulatorSummary(
        status=row.status,
        simulator_id=None if row.simulator_id is None else str(row.simulator_id),
        profile=row.profile,
        created_ms=0 if row.created_at is None else int(row.created_at.timestamp() * 1000),
        version=row.version,
        market=row.market,
    )


def simulator_summaries_of_users(*, user_ids: list[int]) -> dict[int, SimulatorSummary]:
    """Each user's newest simulator as the session messages show it (one query for a batch of
    handshakes); `stopped` for a user who never had one."""
    found = {row.user_id: _summary(row) for row in UserSimulatorStatus.objects.filter(user_id__in=set(user_ids))}
    return {user_id: found.get(user_id, NO_SIMULATOR) for user_id in user_ids}


def simulator_summary_of_user(*, user_id: int) -> SimulatorSummary:
    return simulator_summaries_of_users(user_ids=[user_id])[user_id]
