"""Wiring the kernel into a daphne process: the WebSocket application and the process lifecycle.

config/asgi.py (the composition root) calls these two; the apps' start and stop hooks come from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from channels.routing import URLRouter
from django.conf import settings

from sessions_app.realtime import internals
from sessions_app.realtime.live import live_connections
from sessions_app.realtime.origin import OriginGuard
from sessions_app.realtime.publish import use_server_loop
from sessions_app.realtime.routing import websocket_urlpatterns
from sessions_app.realtime.shutdown import install_graceful_shutdown

Hook = Callable[[], Awaitable[None]]


def websocket_application() -> Any:
    """/ws/session/ behind the Origin check; any other path is refused at the handshake."""
    return OriginGuard(URLRouter(websocket_urlpatterns))


async def _start_maintenance() -> None:
    use_server_loop(asyncio.get_running_loop())
    live_connections.start()


def install(*, on_start: Sequence[Hook] = (), on_stop: Sequence[Hook] = ()) -> None:
    """Fast socket writes (FAST_SOCKET_WRITES), lean protocol instances (LEAN_WEBSOCKET_PROTOCOLS),
    lean connection queues (LEAN_CONNECTION_INBOXES), the maintenance task at start, and the
    graceful shutdown."""
    if settings.FAST_SOCKET_WRITES:
        internals.install_fast_socket_writes()
    if settings.LEAN_WEBSOCKET_PROTOCOLS:
        internals.install_lean_protocols()
    if settings.LEAN_CONNECTION_INBOXES:
        internals.install_lean_inboxes()
    install_graceful_shutdown(on_start=[_start_maintenance, *on_start], on_stop=on_stop)
