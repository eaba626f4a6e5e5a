"""Which handler answers which client message type, and which channel-layer event.

Each app registers its handlers with @handles(MessageClass) and
@handles_event("app.event") in its `handlers` module (imported from
AppConfig.ready). The session consumer looks the type up here, validates the
frame against the class, and awaits the handler; events from other apps reach
their handler the same way, so the consumer needs no method per app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from sessions_app.schema import ClientMessage

if TYPE_CHECKING:
    from sessions_app.consumers import SessionConsumer

M = TypeVar("M", bound=ClientMessage)
Handler = Callable[["SessionConsumer", Any], Awaitable[None]]
EventHandler = Callable[["SessionConsumer", Any], Awaitable[None]]


class Route:
    __slots__ = ("handler", "message_class")

    def __init__(self, message_class: type[ClientMessage], handler: Handler) -> None:
        self.message_class = message_class
        self.handler = handler


ROUTES: dict[str, Route] = {}


def message_type(message_class: type[ClientMessage] | type[Any]) -> str:
    (literal,) = get_args(message_class.model_fields["type"].annotation)
    return literal


def handles(message_class: type[M]) -> Callable[[Callable[[SessionConsumer, M], Awaitable[None]]], Handler]:
    def register(handler: Callable[[SessionConsumer, M], Awaitable[None]]) -> Handler:
        name = message_type(message_class)
        if name in ROUTES:
            raise RuntimeError(f"two handlers for client message {name!r}")
        ROUTES[name] = Route(message_class, handler)
        return handler

    return register


EVENT_ROUTES: dict[str, EventHandler] = {}


def handles_event(event_type: str) -> Callable[[EventHandler], EventHandler]:
    def register(handler: EventHandler) -> EventHandler:
        if event_type in EVENT_ROUTES:
            raise RuntimeError(f"two handlers for event {event_type!r}")
        EVENT_ROUTES[event_type] = handler
        return handler

    return register


# Moments in a connection's life other apps act on: "connected" (after `connected` is sent),
# "reconnected" (after a successful `reconnect_result` that did not recover the stream),
# "resync" (the client must rebuild its state: after `session_resync`, or a `reconnect_result`
# that could not recover), "simulator_changed" (the connection learned a new simulator
# status), "disconnected" (the socket closed).
ConnectionHook = Callable[["SessionConsumer"], Awaitable[None]]
CONNECTION_HOOKS: dict[str, list[ConnectionHook]] = {
    "connected": [],
    "reconnected": [],
    "resync": [],
    "simulator_changed": [],
    "disconnected": [],
}


def on_connection(moment: str) -> Callable[[ConnectionHook], ConnectionHook]:
    def register(hook: ConnectionHook) -> ConnectionHook:
        CONNECTION_HOOKS[moment].append(hook)
        return hook

    return register


async def run_connection_hooks(moment: str, conn: SessionConsumer) -> None:
    for hook in CONNECTION_HOOKS[moment]:
        await hook(conn)


# What a connection does after it forwarded a push of the session stream (sessions_app.session_stream),
# by message type: e.g. remember the new simulator status, or close after an invalidation.
PushHook = Callable[["SessionConsumer", dict[str, Any]], Awaitable[None]]
PUSH_HOOKS: dict[str, PushHook] = {}


def after_push(message_class: type[Any]) -> Callable[[PushHook], PushHook]:
    def register(hook: PushHook) -> PushHook:
        name = message_type(message_class)
        if name in PUSH_HOOKS:
            raise RuntimeError(f"two hooks after push {name!r}")
        PUSH_HOOKS[name] = hook
        return hook

    return register
