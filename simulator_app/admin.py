from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from simulator_app import services
from simulator_app.models import LIVE_STATUSES, Simulator, SimulatorWorker
from simulator_app.selectors import worker_is_live


@admin.register(Simulator)
class SimulatorAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "status",
        "profile",
        "market_shown",
        "reason",
        "worker",
        "worker_heartbeat_at",
        "lease_expires_at",
        "created_at",
        "started_at",
        "stopped_at",
    )
    list_filter = ("status", "profile", "worker__runner", "worker", "created_at")
    search_fields = ("id", "user__username", "session__id", "worker__id")
    list_select_related = ("user", "worker")
    readonly_fields = [field.name for field in Simulator._meta.fields]
    actions = ["stop_simulators"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # simulators are started by their user's `start_simulator`

    @admin.display(description="market")
    def market_shown(self, simulator: Simulator) -> str:
        """The market's source, with a replay's dataset and the bar its clock reached."""
        market = simulator.market
        if market.get("source") != "replay":
            return simulator.market_source
        position = int(simulator.state.get("clock", {}).get("position", -1)) + 1
        return f"replay of dataset {market.get('datasetId')}, bar {position} of {market.get('bars')}"

    @admin.action(description="Stop selected simulators (their users' connections see the update)")
    def stop_simulators(self, request: HttpRequest, queryset: QuerySet[Simulator]) -> None:
        count = 0
        for simulator in queryset.filter(status__in=LIVE_STATUSES):
            count += int(
                services.simulator_stop_by_operator(simulator=simulator, reason=f"stopped by operator {request.user}")
            )
        self.message_user(request, f"Stopping {count} simulator(s).", messages.SUCCESS)


@admin.register(SimulatorWorker)
class SimulatorWorkerAdmin(admin.ModelAdmin):
    list_display = ("id", "runner", "hostname", "pid", "alive", "running", "capacity", "heartbeat_at", "started_at")
    list_filter = ("runner", ("stopped_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "hostname")
    readonly_fields = [field.name for field in SimulatorWorker._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # workers register themselves when they start

    @admin.display(boolean=True, description="alive")
    def alive(self, worker: SimulatorWorker) -> bool:
        return worker_is_live(worker, now=timezone.now())
