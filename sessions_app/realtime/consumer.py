"""The session WebSocket consumer: one `Connection` per client socket.

Channels' AsyncWebsocketConsumer with three public methods overridden: `__call__` reads frames and
channel-layer events in two loops that take turns (`turn`) instead of a task per message;
`dispatch` does not hop to a thread before every message (database work runs in
database_sync_to_async, which closes stale connections); `websocket_disconnect` does its own
bookkeeping before leaving its groups, so a layer this host cannot reach cannot keep it counted.
`connect` runs the handshake (sessions_app.handshake). A frame is checked (frames) and handed to the
handler of its `type`; every failure becomes the standard `error` (`answer_failure`). The routing
tables come from sessions_app.realtime.routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app import handshake
from sessions_app.connection_state import NO_SIMULATOR, SessionState, SimulatorSummary
from sessions_app.realtime import encodings, frames, metrics, presence
from sessions_app.realtime.admission import admission
from sessions_app.realtime.encodings import Encoding
from sessions_app.realtime.errors import (
    CloseCode,
    ErrorCode,
    ErrorMessage,
    ProtocolError,
    as_protocol_error,
    echoable_request_id,
)
from sessions_app.realtime.limits import Slot, connection_release
from sessions_app.realtime.logs import bind, log_context
from sessions_app.realtime.message_base import ClientMessage, ServerMessage, now_ms
from sessions_app.realtime.messages import Shutdown
from sessions_app.realtime.quality import QualityJudge
from sessions_app.realtime.ratelimit import MessageRate
from sessions_app.realtime.session_stream import StreamCursor
from sessions_app.signals import connection_closed, connection_opened

logger = logging.getLogger(__name__)
GROUP_LEAVE_TIMEOUT_S = 2.0  # leaving the groups on disconnect, at most (daphne kills a slower close)
S = TypeVar("S")
Handler = Callable[["Connection", Any], Awaitable[None]]  # (connection, its message class's instance)
EventHandler = Callable[["Connection", Any], Awaitable[None]]  # (connection, the event's TypedDict)


@dataclass(frozen=True, slots=True)
class Route:
    message_class: type[ClientMessage]  # what the frame must be
    handler: Handler


live_connections: dict[str, Connection] = {}  # this process's open ones, by channel name


class Connection(AsyncWebsocketConsumer):
    """One client socket: what handlers are handed. Apps keep their own typed state in `state(Kind)`."""

    # A fixed array per connection, not a dict grown attribute by attribute (thousands are open).
    # fmt: off
    __slots__ = (
        "_states", "base_send", "channel_layer", "channel_name", "closing_task", "connected_at_ms", "connection_id",
        "credential_key", "device_id", "device_key", "encoding", "ending", "events", "expires_ms", "groups", "judge",
        "last_message_monotonic", "last_message_ms", "opened", "rate", "routes", "scope", "session", "session_id",
        "simulator", "slot", "stream", "subprotocol", "turn", "user_id",
    )
    # fmt: on
    stream: StreamCursor  # set once the connection is attached

    def __init__(self, *, routes: dict[str, Route], events: dict[str, EventHandler]) -> None:
        self.groups: list[str] = []  # before the base class's __init__, which reads it
        super().__init__()
        self.routes, self.events = routes, events  # where its frames' and events' types go
        self.turn = asyncio.Lock()  # frames, events and deferred answers take turns
        # Who, from which device, with which credential (the token the handshake presented): set by it.
        self.user_id, self.device_id, self.device_key, self.credential_key = 0, "", 0, 0
        self.session_id = ""
        self.session = SessionState()
        self.simulator: SimulatorSummary = NO_SIMULATOR
        self.expires_ms = 0  # when the session or the token ends (0: never)
        self.slot: Slot | None = None  # counted against the connection limits until disconnect
        self.opened = False  # authenticated and attached: the handlers may act
        self.ending = False  # its last message is on its way: nothing else is sent
        self.encoding = Encoding.JSON  # chosen at the handshake (the subprotocol)
        self.subprotocol: str | None = None
        self.closing_task: asyncio.Task[None] | None = None
        self.connection_id = uuid.uuid4().hex[:12]
        self.connected_at_ms = self.last_message_ms = now_ms()
        self.last_message_monotonic = time.monotonic()
        self.judge = QualityJudge(settings.WS_HEARTBEAT_INTERVAL_MS)
        self.rate = MessageRate(now=self.last_message_monotonic)
        self._states: dict[type, object] = {}

    def state(self, kind: type[S]) -> S:
        """This connection's instance of an app's state class (made on first use, with no arguments)."""
        value = self._states.get(kind)
        if not isinstance(value, kind):  # absent: every value stored is an instance of its key
            value = self._states[kind] = kind()
        return value

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        try:
            self.channel_name = await self.channel_layer.new_channel()
        except Exception:
            logger.warning("channel layer unavailable: the handshake will be refused", exc_info=True)
            self.channel_name = ""
        events = asyncio.ensure_future(self._read_events())
        try:
            while True:
                message = await receive()
                async with self.turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events

    async def _read_events(self) -> None:
        while self.channel_name:
            try:
                event = await self.channel_layer.receive(self.channel_name)
            except Exception:  # a layer whose receive fails (not ours): the stream check repairs the gap
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
                await asyncio.sleep(1.0)
                continue
            async with self.turn:
                await self.dispatch(event)

    async def dispatch(self, message: dict) -> None:
        kind = message["type"]
        try:
            if kind.startswith("websocket."):  # the socket's own: websocket_connect, _receive, _disconnect
                await getattr(self, kind.replace(".", "_"))(message)
            elif self.opened and not self.ending:  # an event, for the app that handles its type
                await self.events[kind](self, message)
        except StopConsumer:
            raise
        except Exception as error:
            # Client messages have their own error path (receive); this is the rest: an event's work.
            logger.exception("failure while handling %s", kind)
            if self.opened and not self.ending:
                with contextlib.suppress(Exception):
                    await self.send_message(as_protocol_error(error).to_message())

    async def connect(self) -> None:
        self.subprotocol, encoding = encodings.negotiated(list(self.scope.get("subprotocols") or ()))
        self.encoding = encoding or Encoding.JSON
        if encoding is None:
            await self._refuse(ProtocolError(ErrorCode.UNSUPPORTED_SUBPROTOCOL))
            return
        gate = admission()
        if gate.closing:
            metrics.CONNECTS.labels("server_shutdown").inc()
            await self.accept(self.subprotocol)
            await self.server_shutdown("server shutting down", held=len(live_connections))
            return
        refusal = gate.admit(layer_reachable=bool(self.channel_name))
        if refusal is not None:
            await self._refuse(refusal)
            return
        try:
            await self._open()
        finally:
            gate.leave()

    async def _open(self) -> None:
        try:
            opening = await handshake.open_session(
                scope=self.scope, layer=self.channel_layer, channel=self.channel_name, connection_id=self.connection_id
            )
        except Exception as error:
            if not isinstance(error, ProtocolError):
                logger.error("handshake failed", exc_info=error)
            await self._refuse(as_protocol_error(error))
            return
        credential, attached = opening.credential, opening.attached
        self.user_id, self.device_id = credential.user_id, credential.device_id
        self.device_key, self.credential_key = credential.device_key, credential.token_id
        self.slot, self.groups = opening.slot, list(opening.groups)
        self.session_id, self.session, self.simulator = attached.session_id, attached.session, attached.simulator
        self.expires_ms = self.session.ends_at()
        self.stream = StreamCursor(self.session_id, opening.head)
        self.opened = True
        bind(connectionId=self.connection_id, userId=self.user_id, deviceId=self.device_id, sessionId=self.session_id)
        await self.accept(self.subprotocol)
        live_connections[self.channel_name] = self
        metrics.CONNECTS.labels("accepted").inc()
        metrics.CONNECTIONS_OPEN.inc()
        await self.send_message(handshake.connected_message(opening))
        logger.info("connection opened (session %s)", "resumed" if self.session.resumed else "new")
        await connection_opened.asend(sender=Connection, connection=self)
        if admission().closing and not self.ending:
            # SIGTERM landed while this handshake was under way, after the drain had told the others.
            await self.server_shutdown("server shutting down", held=len(live_connections))

    async def _refuse(self, error: ProtocolError) -> None:
        logger.info("handshake refused with %s", error.code)
        metrics.CONNECTS.labels(error.code.value).inc()
        self.ending = True
        await self.accept(self.subprotocol)
        await self.send_message(error.to_message())
        await self.close(code=int(error.spec.close or CloseCode.TRY_AGAIN_LATER))

    async def websocket_disconnect(self, message: dict) -> None:
        self.ending = True  # nothing more can reach the client
        await self.disconnect(message["code"])
        if self.groups and not admission().layer_down:
            try:
                async with asyncio.timeout(GROUP_LEAVE_TIMEOUT_S):
                    for name in self.groups:
                        await self.channel_layer.group_discard(name, self.channel_name)
            except Exception as error:  # memberships expire, or die with a pub/sub connection
                logger.warning("could not leave %d groups on disconnect: %r", len(self.groups), error)
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        metrics.DISCONNECTS.labels(str(code)).inc()
        if live_connections.pop(self.channel_name, None) is not None:
            metrics.CONNECTIONS_OPEN.dec()
        await connection_release(slot=self.slot)
        if self.opened:
            presence.seen(session_id=self.session_id, device_key=self.device_key)
            logger.info("connection closed with code %s", code)
            await connection_closed.asend(sender=Connection, connection=self)

    async def end(self, message: ServerMessage, close_code: CloseCode) -> None:
        """Send a last message and close. Idempotent: only the first reason is told."""
        if self.ending:
            return
        self.ending = True
        try:
            await self.send_message(message)
        finally:
            await self.close(code=int(close_code))

    async def server_shutdown(self, reason: str, *, held: int = 1) -> None:
        """Tell the client to come back (elsewhere) in a while: one of `held` connections told at once."""
        retry_after = admission().shutdown_retry_after_ms(held=held)
        await self.end(
            Shutdown(timestamp=now_ms(), reason=reason, reconnectAfterMs=retry_after), CloseCode.SERVER_SHUTDOWN
        )

    async def send_message(self, message: ServerMessage) -> None:
        await self.send_text(message.to_json(), message.type)
        if isinstance(message, ErrorMessage):
            metrics.ERRORS.labels(message.code).inc()

    async def send_text(self, text: str, kind: str | None = None) -> None:
        """Send a message already encoded as JSON (a push, a tick), in the connection's encoding;
        `kind`, its `type`, is counted when given."""
        if self.encoding is Encoding.MSGPACK:
            await self.base_send({"type": "websocket.send", "bytes": encodings.msgpack_of(text)})
        else:
            await self.base_send({"type": "websocket.send", "text": text})
        if kind is not None:
            metrics.count_out(kind)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_message_monotonic = time.monotonic()
        self.last_message_ms = now_ms()
        if self.ending or not self.opened:
            return  # the connection is closing; its close frame is on the way
        presence.seen(session_id=self.session_id, device_key=self.device_key)
        request_id: str | None = None
        context = None
        try:
            if bytes_data is not None and self.encoding is Encoding.MSGPACK:
                data, text_data = encodings.parse_msgpack(bytes_data), ""  # valid UTF-8: no surrogate to find
            else:
                data = frames.parse(text_data)
            request_id = echoable_request_id(data.get("requestId"))
            if request_id is not None:
                context = bind(requestId=request_id)
            metrics.count_in(data.get("type"))
            kind = data.get("type")
            known = self.routes.get(kind) if isinstance(kind, str) else None
            cheap = known is not None and known.message_class.acknowledgement
            refusal = self.rate.refusal(self.last_message_monotonic, acknowledgement=cheap)
            if refusal is not None:
                raise ProtocolError(refusal)
            route = known if known is not None else frames.route_of(kind, self.routes)  # unknown_type
            await route.handler(self, frames.validated(route.message_class, data, text_data or ""))
        except Exception as error:
            await self.answer_failure(error, request_id)
        finally:
            if context is not None:
                log_context.reset(context)

    async def answer_failure(self, error: Exception, request_id: str | None) -> None:
        """The one place a client message's failure becomes the standard `error`."""
        if isinstance(error, ProtocolError):
            logger.info("replied with error %s", error.code)
        else:
            logger.error("failure while handling a message", exc_info=error)
        failure = as_protocol_error(error)
        if failure.request_id is None:
            failure.request_id = request_id
        await self.send_message(failure.to_message())
        if failure.spec.close is not None:
            self.ending = True
            await self.close(code=int(failure.spec.close))
