from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from simulator_app.leases import Leased


class SimulatorStatus(models.TextChoices):
    STARTING = "starting", "starting"
    RUNNING = "running", "running"
    STOPPING = "stopping", "stopping"
    STOPPED = "stopped", "stopped"
    ERROR = "error", "error"


class SimulatorProfile(models.TextChoices):
    """How realistic the simulated exchange is for this run (market_app.realism holds each profile's numbers)."""

    IDEAL = "ideal", "ideal (no spread, fees or latency)"
    REALISTIC = "realistic", "realistic"
    HARSH = "harsh", "harsh (wide spreads, thin books, slow, expensive)"


DEFAULT_PROFILE = SimulatorProfile.REALISTIC

LIVE_STATUSES = (SimulatorStatus.STARTING, SimulatorStatus.RUNNING, SimulatorStatus.STOPPING)


class SimulatorWorker(models.Model):
    """A process that runs simulators: a `simulator_worker` process, or a daphne process in embedded mode."""

    class Runner(models.TextChoices):
        WORKER = "worker", "worker process"
        INPROCESS = "inprocess", "inside a server process"

    id = models.CharField(primary_key=True, max_length=120)
    hostname = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    runner = models.CharField(max_length=16, choices=Runner.choices)
    channel_name = models.CharField(max_length=200, help_text="Where commands for its simulators are sent.")
    capacity = models.PositiveIntegerField()
    running = models.PositiveIntegerField(default=0, help_text="Simulators it held at its last heartbeat.")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-heartbeat_at"]

    def __str__(self) -> str:
        return self.id


class Simulator(Leased):
    """One trading simulator run. One live (starting/running/stopping) simulator per user at most.

    The worker running it holds its lease (simulator_app.leases); when the lease lapses another
    worker may adopt it. An unassigned simulator has no worker, and `lease_expires_at` is when it
    became unassigned; an ended one has neither.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey("sessions_app.TradingSession", on_delete=models.CASCADE, related_name="simulators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="simulators")
    status = models.CharField(max_length=16, choices=SimulatorStatus.choices, default=SimulatorStatus.STARTING)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it reached its current status.")
    version = models.PositiveIntegerField(default=0, help_text="Counts status changes; orders the updates.")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    worker_heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last lease renewal by its worker.")
    state = models.JSONField(default=dict, blank=True, help_text="The engine's last checkpoint.")
    profile = models.CharField(max_length=10, choices=SimulatorProfile.choices, default=DEFAULT_PROFILE)
    market = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where its prices come from (simulator_app.markets): empty or source `shared` for the shared "
        "feed, `replay` (a dataset, symbols, a range) or `synthetic` (a seed).",
    )
    clock = models.JSONField(
        default=dict, blank=True, help_text="What its trader asked of its clock (simulator_app.clock.ClockSettings)."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status__in=["starting", "running", "stopping"]),
                name="one_live_simulator_per_user",
            )
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="simulator_status_lease")]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def market_source(self) -> str:
        return str(self.market.get("source", "shared"))

    @property
    def own_market(self) -> bool:
        """Its prices are its own (a replay or a synthetic walk), not the shared feed's."""
        return self.market_source != "shared"
