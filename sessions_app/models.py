from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Device(models.Model):
    """A client installation (browser profile, phone) that a user signs in from."""

    device_id = models.CharField(max_length=128, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True, db_index=True)
    invalidated_reason = models.CharField(max_length=200, blank=True)
    # Incremented on every WebSocket connect; the newest connection of a device wins.
    connection_generation = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.device_id

    @property
    def is_valid(self) -> bool:
        return self.invalidated_at is None


class AccessToken(models.Model):
    """A bearer token bound to one user and one device. Only its SHA-256 is stored."""

    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=8, help_text="First characters of the token, to recognise it.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="access_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.user})"


class SessionStatus(models.TextChoices):
    ACTIVE = "active", "active"
    STOPPED = "stopped", "stopped"
    EXPIRED = "expired", "expired"


class TradingSession(models.Model):
    """A user's session on one device. It outlives connections; at most one is active per device."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_sessions")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sessions")
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Mixed into the session token's MAC so a token can be rotated without a new session.
    token_nonce = models.CharField(max_length=32)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "trading session"
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=Q(status="active"), name="one_active_session_per_device"
            )
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class ServerProcess(models.Model):
    """A daphne process, and the connections it held at its last report (every presence flush)."""

    id = models.CharField(primary_key=True, max_length=120)
    hostname = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    reported_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    connection_count = models.PositiveIntegerField(default=0)
    connections = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-reported_at"]
        verbose_name = "server process"

    def __str__(self) -> str:
        return self.id


class UserSimulatorStatus(models.Model):
    """A user's newest simulator as the session messages show it (`connected`, `heartbeat_ack`,
    `session_info`, `reconnect_result`, `session_resync`). The simulator app writes this copy in the
    transaction of every status change, so the sessions floor reads it without knowing simulators."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+")
    simulator_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=16, default="stopped")
    profile = models.CharField(max_length=16, null=True, blank=True)
    market = models.CharField(max_length=16, default="shared", help_text="Where its prices come from.")
    created_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "user's simulator status"
        verbose_name_plural = "users' simulator statuses"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"
