"""ASGI entry point: HTTP (Django, DRF, admin) and the session WebSocket."""

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.SERVE_STATIC:
    # The admin's CSS and JS straight from the apps; in production a proxy serves `collectstatic` output.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

if settings.FAST_SOCKET_WRITES:
    from config import socket_writes

    socket_writes.install()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from sessions_app.layer import use_server_loop  # noqa: E402
from sessions_app.live import live_connections  # noqa: E402
from sessions_app.origin import OriginGuard  # noqa: E402
from sessions_app.routing import websocket_urlpatterns  # noqa: E402
from sessions_app.shutdown import install_graceful_shutdown  # noqa: E402
from simulator_app import runtime as simulator_runtime  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginGuard(URLRouter(websocket_urlpatterns)),
    }
)


async def start_maintenance() -> None:
    use_server_loop(asyncio.get_running_loop())
    live_connections.start()


install_graceful_shutdown(
    on_start=[start_maintenance, simulator_runtime.start_in_server], on_stop=[simulator_runtime.stop_in_server]
)
