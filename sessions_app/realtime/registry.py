"""What the apps plug into the kernel, filled in their AppConfig.ready().

- @handles(MessageClass): the handler of a client message type; the consumer validates the
  frame against the class and awaits `handler(conn, message)`.
- @handles_event("app.event"): the handler of a channel-layer event sent to connections.
- @after_push(MessageClass): what a connection does after it forwarded a numbered push.
- Moment: a point in a connection's life other apps act on. The kernel has `connected` and
  `disconnected`; an app declares its own (`Moment("reconnected")`) for the apps above it.
- register_family(): an app's messages, for the export.
- use_session_handler(): the app that owns sessions (authentication, attach, resync, expiry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from sessions_app.realtime import metrics
from sessions_app.realtime.schema import ClientMessage, ServerMessage, message_type
from sessions_app.realtime.stream import ResyncReason, StreamHead

# The consumer (sessions_app.realtime.consumer.Connection), which imports this module.
Connection = Any
M = TypeVar("M", bound=ClientMessage)
Handler = Callable[[Connection, Any], Awaitable[None]]
EventHandler = Callable[[Connection, Any], Awaitable[None]]
PushHook = Callable[[Connection, dict[str, Any]], Awaitable[None]]
Hook = Callable[[Connection], Awaitable[None]]


class Route:
    __slots__ = ("handler", "message_class")

    def __init__(self, message_class: type[ClientMessage], handler: Handler) -> None:
        self.message_class = message_class
        self.handler = handler


ROUTES: dict[str, Route] = {}
EVENT_ROUTES: dict[str, EventHandler] = {}
PUSH_HOOKS: dict[str, PushHook] = {}


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


def after_push(message_class: type[ServerMessage]) -> Callable[[PushHook], PushHook]:
    def register(hook: PushHook) -> PushHook:
        name = message_type(message_class)
        if name in PUSH_HOOKS:
            raise RuntimeError(f"two hooks after push {name!r}")
        PUSH_HOOKS[name] = hook
        return hook

    return register


class Moment:
    """A named point in a connection's life; hooks run in the order they were connected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hooks: list[Hook] = []

    def connect(self, hook: Hook) -> Hook:
        self.hooks.append(hook)
        return hook

    async def run(self, conn: Connection) -> None:
        for hook in self.hooks:
            await hook(conn)

    def __repr__(self) -> str:
        return f"Moment({self.name!r})"


connected = Moment("connected")  # after the first message went out
disconnected = Moment("disconnected")  # the socket closed (only for connections that were opened)


# --- Message families (the export collects them) ---------------------------------------


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


# --- The session handler ---------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """What the session handler gives a connection it attached: the groups it joins, the session
    whose stream it follows, when it must end (epoch ms, 0 for never) and its log fields."""

    session_id: str
    groups: tuple[str, ...]
    expires_ms: int = 0
    log_fields: dict[str, Any] | None = None
    # (group, tell): a group the connection joined before attaching, and what to call once it has
    # joined `groups`, unless the layer shows nobody else in that group (older connections to replace).
    tell_others: tuple[str, Callable[[], Awaitable[None]]] | None = None


class SessionHandler(Protocol):
    """The app that owns sessions fills in the handshake and the moments only it can answer."""

    async def authenticate(self, conn: Connection) -> None:
        """Check the handshake's credentials and set conn.user_id/device_id/device_key, or raise ProtocolError."""

    def listens_to(self, conn: Connection) -> tuple[str, ...]:
        """The groups the authenticated connection joins before attach() (with the connection
        limits' check, in one round trip where the layer allows), so it hears what happens meanwhile."""

    async def attach(self, conn: Connection) -> Opening:
        """Give the authenticated connection its session (after the connection limits let it in)."""

    async def opened(self, conn: Connection) -> ServerMessage | None:
        """After the socket was accepted and the groups joined: the first message, or None if it was ended."""

    async def resynchronise(
        self, conn: Connection, *, reason: ResyncReason, request_id: str | None, head: StreamHead
    ) -> None:
        """Tell the client its new stream position and send what it must rebuild its state from."""

    async def expire(self, conn: Connection) -> None:
        """The connection reached its expires_ms (its Opening's, or what the handler set since)."""

    async def credential_revoked(self, conn: Connection) -> None:
        """The credential the connection was opened with (conn.credential_key) no longer holds."""

    def describe(self, conn: Connection) -> dict[str, Any]:
        """Fields of the connection in the live view besides the kernel's own."""


_session_handler: SessionHandler | None = None


def use_session_handler(handler: SessionHandler) -> None:
    global _session_handler
    if _session_handler is not None and _session_handler is not handler:
        raise RuntimeError("a session handler is registered already")
    _session_handler = handler


def session_handler() -> SessionHandler:
    if _session_handler is None:
        raise RuntimeError("no session handler registered (the sessions app registers one in ready())")
    return _session_handler


# --- What every live connection's description gets from the apps --------------------------

Describer = Callable[[Connection], dict[str, Any]]
DESCRIBERS: list[Describer] = []


def describes(describer: Describer) -> Describer:
    DESCRIBERS.append(describer)
    return describer


# --- Chores the maintenance task runs for the apps -----------------------------------------


@dataclass(frozen=True)
class Presence:
    """What this process saw since the last flush: sessions and devices that sent a message."""

    session_ids: list[str]
    device_keys: list[int]


class Chores(Protocol):
    def presence_flush(self, presence: Presence) -> None: ...
    def process_report(self, *, process_id: str, hostname: str, pid: int, connections: list[dict]) -> None: ...
    def process_stopped(self, *, process_id: str) -> None: ...
    def sweep(self) -> None: ...
    def credentials_revoked(self, keys: list[int]) -> list[int]: ...


_chores: Chores | None = None


def use_chores(chores: Chores) -> None:
    global _chores
    _chores = chores


def chores() -> Chores | None:
    return _chores
