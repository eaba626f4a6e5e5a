from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from config.health import healthz, metrics_view, readyz

urlpatterns = [
    path("", TemplateView.as_view(template_name="trading/console.html"), name="console"),
    path("admin/", admin.site.urls),
    path("api/market/", include("market_app.api.urls")),
    path("api/", include("sessions_app.api.urls")),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics_view),
]

handler400 = "sessions_app.api.fallback.bad_request"
handler403 = "sessions_app.api.fallback.permission_denied"
handler404 = "sessions_app.api.fallback.page_not_found"
handler500 = "sessions_app.api.fallback.server_error"
