from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from sessions_app.realtime.consumer import Connection

websocket_urlpatterns = [
    path("ws/session/", Connection.as_asgi()),
    # Any other path is refused at the handshake (HTTP 403) instead of crashing the router.
    re_path(r"", WebsocketDenier.as_asgi()),
]
