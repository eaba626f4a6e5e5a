from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from sessions_app import selectors, services
from sessions_app.models import AccessToken, Device, ServerProcess, SessionStatus, TradingSession


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("device_id", "user", "created_at", "last_seen_at", "invalidated_at", "invalidated_reason")
    list_filter = (("invalidated_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("device_id", "user__username", "user__email")
    readonly_fields = ("created_at", "last_seen_at", "invalidated_at", "connection_generation")
    raw_id_fields = ("user",)
    actions = ["invalidate_devices"]

    @admin.action(description="Invalidate selected devices (closes their live connections)")
    def invalidate_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        count = 0
        for device in queryset.filter(invalidated_at__isnull=True):
            services.device_invalidate(device=device, reason=f"invalidated by operator {request.user}")
            count += 1
        self.message_user(request, f"Invalidated {count} device(s).", messages.SUCCESS)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("key_prefix", "user", "device", "created_at", "expires_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "expires_at")
    search_fields = ("key_prefix", "user__username", "device__device_id")
    readonly_fields = ("key_hash", "key_prefix", "user", "device", "created_at", "expires_at", "revoked_at")
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are issued by POST /api/auth/token/ or `manage.py issue_token`

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[AccessToken]) -> None:
        for token in queryset:
            services.token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(TradingSession)
class TradingSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "device", "status", "created_at", "expires_at", "last_seen_at", "end_reason")
    list_filter = ("status", "created_at", "expires_at")
    search_fields = ("id", "user__username", "device__device_id")
    readonly_fields = (
        "id",
        "user",
        "device",
        "status",
        "created_at",
        "expires_at",
        "ended_at",
        "end_reason",
        "last_seen_at",
    )
    exclude = ("token_nonce",)
    actions = ["stop_sessions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are opened by connecting

    @admin.action(description="Stop selected sessions (closes their live connections)")
    def stop_sessions(self, request: HttpRequest, queryset: QuerySet[TradingSession]) -> None:
        count = 0
        for session in queryset.filter(status=SessionStatus.ACTIVE):
            count += int(services.session_stop(session=session, reason=f"stopped by operator {request.user}").stopped)
        self.message_user(request, f"Stopped {count} session(s).", messages.SUCCESS)


# The index page shows the counts an operator checks first (sessions_app.selectors.service_counts).
admin.site.index_template = "admin/sessions_app/index_with_counts.html"


@admin.register(ServerProcess)
class ServerProcessAdmin(admin.ModelAdmin):
    """Daphne processes and, on the "Live connections" page, who is connected to each."""

    list_display = ("id", "hostname", "pid", "alive", "connection_count", "reported_at", "started_at")
    readonly_fields = ("id", "hostname", "pid", "started_at", "reported_at", "stopped_at", "connection_count")
    exclude = ("connections",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(boolean=True, description="alive")
    def alive(self, process: ServerProcess) -> bool:
        return process.stopped_at is None and process.reported_at >= selectors.server_process_stale_before()

    def get_urls(self) -> list:
        return [
            path("live/", self.admin_site.admin_view(self.live_view), name="sessions_app_live_connections"),
            *super().get_urls(),
        ]

    def live_view(self, request: HttpRequest) -> HttpResponse:
        """Every connection of every live process (as of its last report), with actions on each."""
        if request.method == "POST":
            self._act(request)
            return redirect(request.path)
        rows = []
        for process in selectors.live_server_processes():
            for connection in process.connections:
                rows.append({**connection, "process": process.id, "reportedAt": process.reported_at})
        context = {
            **self.admin_site.each_context(request),
            "title": "Live connections",
            "rows": sorted(rows, key=lambda row: row["connectedAt"], reverse=True),
            "opts": self.model._meta,
            "report_interval": settings.PRESENCE_FLUSH_INTERVAL_S,
        }
        return TemplateResponse(request, "admin/sessions_app/live_connections.html", context)

    def _act(self, request: HttpRequest) -> None:
        action, operator = request.POST.get("action"), str(request.user)
        channel, device_id, session_id = (request.POST.get(k, "") for k in ("channel", "device", "session"))
        if action == "disconnect" and channel:
            services.connection_close_by_operator(channel_name=channel, operator=operator)
            self.message_user(request, "The connection was told to close.", messages.SUCCESS)
        elif action == "invalidate" and (device := Device.objects.filter(device_id=device_id).first()):
            services.device_invalidate(device=device, reason=f"invalidated by operator {operator}")
            self.message_user(request, f"Device {device_id} invalidated.", messages.SUCCESS)
        elif action == "stop" and (session := TradingSession.objects.filter(pk=session_id).first()):
            outcome = services.session_stop(session=session, reason=f"stopped by operator {operator}")
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.stopped else messages.WARNING)
        else:
            self.message_user(request, "Nothing to do: unknown action or target.", messages.ERROR)
