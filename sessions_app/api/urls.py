from django.urls import path

from sessions_app.api import views

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("auth/ticket/", views.TicketObtainView.as_view(), name="ticket-obtain"),
    path("devices/", views.DeviceListView.as_view(), name="device-list"),
    path("devices/<str:device_id>/invalidate/", views.DeviceInvalidateView.as_view(), name="device-invalidate"),
    path("schema/", views.OpenApiView.as_view(), name="openapi"),
]
