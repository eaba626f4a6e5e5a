"""Where client messages and channel-layer events go, filled as the apps import their handlers
(in their AppConfig.ready()) and handed to every connection (sessions_app.realtime.routing), and
the message families the protocol export collects.

- @handles(MessageClass): the handler of a client message type; the consumer validates the
  frame against the class and awaits `handler(connection, message)`.
- @handles_event("app.event"): the handler of a channel-layer event sent to connections.
- register_family(): an app's messages, for the export.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from sessions_app.realtime import metrics
from sessions_app.realtime.consumer import Connection, EventHandler, Handler, Route
from sessions_app.realtime.message_base import ClientMessage, ServerMessage, message_type

M = TypeVar("M", bound=ClientMessage)


ROUTES: dict[str, Route] = {}
EVENT_ROUTES: dict[str, EventHandler] = {}


def handles(message_class: type[M]) -> Callable[[Callable[[Connection, M], Awaitable[None]]], Handler]:
    def register(handler: Callable[[Connection, M], Awaitable[None]]) -> Handler:
        name = message_type(message_class)
        if name in ROUTES:
            raise RuntimeError(f"two handlers for client message {name!r}")
        ROUTES[name] = Route(message_class, handler)
        metrics.CLIENT_TYPES.add(name)
        return handler

    return register


def handles_event(event_type: str) -> Callable[[EventHandler], EventHandler]:
    def register(handler: EventHandler) -> EventHandler:
        if event_type in EVENT_ROUTES:
            raise RuntimeError(f"two handlers for event {event_type!r}")
        EVENT_ROUTES[event_type] = handler
        return handler

    return register


@dataclass(frozen=True)
class Family:
    name: str
    client: tuple[type[ClientMessage], ...]
    server: tuple[type[ServerMessage], ...]
    http: tuple[type[BaseModel], ...] = ()


FAMILIES: list[Family] = []


def register_family(
    name: str,
    *,
    client: Sequence[type[ClientMessage]] = (),
    server: Sequence[type[ServerMessage]] = (),
    http: Sequence[type[BaseModel]] = (),
) -> Family:
    if any(family.name == name for family in FAMILIES):
        raise RuntimeError(f"message family {name!r} registered twice")
    family = Family(name, tuple(client), tuple(server), tuple(http))
    FAMILIES.append(family)
    return family
