from django.contrib import admin

from simulator_app.models import Simulator


@admin.register(Simulator)
class SimulatorAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "session", "status", "created_at", "started_at", "stopped_at")
    list_filter = ("status", "created_at")
    search_fields = ("id", "user__username", "session__id")
    readonly_fields = ("id", "session", "user", "created_at", "started_at", "stopped_at")
