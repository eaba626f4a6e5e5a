"""Which handler answers which client message type.

Each app registers its handlers with @handles(MessageClass) in its `handlers`
module (imported from AppConfig.ready). The session consumer looks the type up
here, validates the frame against the class, and awaits the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from sessions_app.schema import ClientMessage

if TYPE_CHECKING:
    from sessions_app.consumers import SessionConsumer

M = TypeVar("M", bound=ClientMessage)
Handler = Callable[["SessionConsumer", Any], Awaitable[None]]


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
