from django.urls import path, re_path

from sessions_app.api import docs, fallback, views

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("auth/ticket/", views.TicketObtainView.as_view(), name="ticket-obtain"),
    path("devices/", views.DeviceListView.as_view(), name="device-list"),
    path("devices/<str:device_id>/invalidate/", views.DeviceInvalidateView.as_view(), name="device-invalidate"),
    path("schema/", views.OpenApiView.as_view(), name="openapi"),
    path("asyncapi.json", views.AsyncApiView.as_view(), name="asyncapi"),
    path("docs/", docs.swagger_ui, name="api-docs"),
    path("docs/socket/", docs.socket_page, name="socket-docs"),
    # Last, and after the market's routes (config/urls.py): the JSON 404 for the rest of /api/.
    re_path(r"^(?P<rest>.*)$", fallback.not_found, name=fallback.NOT_FOUND_ROUTE),
]
