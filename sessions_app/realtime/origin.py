"""Refuse WebSocket handshakes from browser origins we do not serve.

Browsers always send Origin; other clients (native apps, servers) may not, and
since they could send any Origin they like, refusing them would add no safety.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def origin_allowed(origin: str | None) -> bool:
    if origin is None:
        return True
    allowed = settings.WS_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    if allowed:
        return origin.rstrip("/") in {item.rstrip("/") for item in allowed}
    # As Django reads a Host header: lowercased, an IPv6 address kept in its brackets ("[::1]").
    host, _ = split_domain_port(urlsplit(origin).netloc)
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


class OriginGuard:
    """ASGI middleware: a disallowed Origin gets an HTTP 403 at the handshake."""

    def __init__(self, application: ASGI3Application) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "websocket":
            origin = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"), None)
            if not origin_allowed(origin):
                denier = WebsocketDenier()
                await denier(scope, receive, send)
                return
        await self.application(scope, receive, send)
