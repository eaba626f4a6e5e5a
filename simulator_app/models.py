from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SimulatorStatus(models.TextChoices):
    STARTING = "starting", "starting"
    RUNNING = "running", "running"
    STOPPING = "stopping", "stopping"
    STOPPED = "stopped", "stopped"
    ERROR = "error", "error"


LIVE_STATUSES = (SimulatorStatus.STARTING, SimulatorStatus.RUNNING, SimulatorStatus.STOPPING)


class Simulator(models.Model):
    """One trading simulator run, owned by a session."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("sessions_app.TradingSession", on_delete=models.CASCADE, related_name="simulators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="simulators")
    status = models.CharField(max_length=16, choices=SimulatorStatus.choices, default=SimulatorStatus.STARTING)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"
