from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sessions_app import services
from sessions_app.models import AccessToken, Device, SessionStatus, TradingSession


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
