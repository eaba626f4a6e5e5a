"""The WebSocket side of the ASGI application: /ws/session/ behind the Origin check."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.message_routes import EVENT_ROUTES, ROUTES
from sessions_app.realtime.origin import OriginGuard

websocket_urlpatterns = [
    # Each connection is handed the routing tables the apps fill as they load their handlers.
    path("ws/session/", Connection.as_asgi(routes=ROUTES, events=EVENT_ROUTES)),
    # Any other path is refused at the handshake (HTTP 403) instead of crashing the router.
    re_path(r"", WebsocketDenier.as_asgi()),
]


def websocket_application() -> Any:
    return OriginGuard(URLRouter(websocket_urlpatterns))
