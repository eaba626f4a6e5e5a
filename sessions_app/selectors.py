"""Reads of the session app. No writes here."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from sessions_app.models import AccessToken, Device, SessionStatus, TradingSession
from sessions_app.tokens import hash_access_token


def access_token_by_raw(raw: str) -> AccessToken | None:
    return AccessToken.objects.select_related("user", "device").filter(key_hash=hash_access_token(raw)).first()


def device_by_device_id(device_id: str) -> Device | None:
    return Device.objects.filter(device_id=device_id).first()


def devices_of_user(user_id: int) -> QuerySet[Device]:
    return Device.objects.filter(user_id=user_id).order_by("-created_at")


def session_by_id(session_id: uuid.UUID) -> TradingSession | None:
    return TradingSession.objects.select_related("device").filter(pk=session_id).first()


def active_session_of_device(device_pk: int) -> TradingSession | None:
    return TradingSession.objects.filter(device_id=device_pk, status=SessionStatus.ACTIVE).first()


def device_connection_generation(device_pk: int) -> int:
    return Device.objects.filter(pk=device_pk).values_list("connection_generation", flat=True).first() or 0
