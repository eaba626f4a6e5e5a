"""The session WebSocket consumer: `connect`, `receive`, `disconnect` and a routing table.

It knows no domain. The handshake is the registered session handler's (registry.SessionHandler):
authenticate, then the connection limits, then attach a session, join its groups, accept, and
send the handler's first message. A frame is parsed, rate-limited, validated against the class
its `type` routes to (registry.handles) and handed to that handler; every ProtocolError becomes
the standard `error`. Channel-layer events reach registry.handles_event handlers, numbered pushes
go through the connection's stream cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypedDict, TypeVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.db import DatabaseError
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions_app.realtime import internals, metrics, registry
from sessions_app.realtime.admission import admission
from sessions_app.realtime.errors import (
    CloseCode,
    ErrorCode,
    ErrorDetail,
    ErrorMessage,
    ProtocolError,
    details_from,
    echoable_request_id,
    lone_surrogate_at,
)
from sessions_app.realtime.limits import (
    Slot,
    client_address,
    connection_acquire,
    connection_acquire_command,
    connection_acquired,
    connection_release,
    connection_release_commands,
    connection_release_failed,
)
from sessions_app.realtime.live import live_connections
from sessions_app.realtime.logs import bind, log_context
from sessions_app.realtime.messages import Shutdown, Timeout
from sessions_app.realtime.quality import QualityJudge
from sessions_app.realtime.ratelimit import AbuseWindow, TokenBucket
from sessions_app.realtime.schema import ServerMessage, now_ms
from sessions_app.realtime.stream import ResyncReason, SessionPushEvent, StreamCursor, StreamHead, stream_store

logger = logging.getLogger(__name__)
# A backing service that did not answer: the standard retryable `service_unavailable`, not an
# `internal_error` (a Redis pool that stayed busy through a storm, the database down).
SERVICE_DOWN = (DatabaseError, RedisConnectionError, RedisTimeoutError)

# Only a `\uD800` to `\uDFFF` escape can put a lone surrogate into decoded JSON (daphne hands over
# valid UTF-8 text; a surrogate itself is matched too, for servers that do not): frames without one skip the walk.
_MAY_HOLD_SURROGATES = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")
GROUP_DISCARD_TIMEOUT_S = 2.0  # leaving the groups on disconnect, at most (daphne kills a slower close)
S = TypeVar("S")


class ConnectionCloseEvent(TypedDict):
    """To one connection's channel: an operator closes it (the session is kept)."""

    type: Literal["connection.close"]
    reason: str


class Connection(AsyncWebsocketConsumer):
    """One client socket: what handlers are handed. Apps keep their own typed state in `state(Kind)`."""

    # Slots: a connection's own state in a fixed array, not in a dict grown attribute by attribute
    # (the base classes keep a __dict__ for anything else).
    __slots__ = (
        "_answering",
        "_inbox",
        "_states",
        "_transport",
        "abuse",
        "base_send",
        "bucket",
        "channel_layer",
        "channel_name",
        "closing_task",
        "connected_at_ms",
        "connection_id",
        "connection_slot",
        "counted_open",
        "credential_key",
        "device_id",
        "device_key",
        "ending",
        "expires_ms",
        "groups",
        "judge",
        "last_message_monotonic",
        "last_message_ms",
        "layer_failed",
        "opened",
        "scope",
        "session_id",
        "stream",
        "user_id",
    )
    stream: StreamCursor  # set from its Opening, once attached

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.groups: list[str] = []  # before the base class's __init__, which reads it
        super().__init__(*args, **kwargs)
        # Set by the session handler's authenticate(): who, from which device, with which credential
        # (the revocable token the handshake presented; the maintenance task checks it is still valid).
        self.user_id = 0
        self.device_id = ""
        self.device_key = 0
        self.credential_key = 0
        # Set from its Opening.
        self.session_id = ""
        self.expires_ms = 0
        self.connection_slot: Slot | None = None  # counted against the connection limits until disconnect
        self._transport: Any = None
        self._answering: set[asyncio.Task[None]] | None = None  # answer_later's tasks, made on first use
        self._inbox: internals.Inbox | None = None  # the queue the connection's loop reads, under daphne
        self.opened = False  # authenticated and attached: the handlers may act
        self.ending = False
        self.closing_task: asyncio.Task[None] | None = None
        self.last_message_monotonic = time.monotonic()
        self.last_message_ms = now_ms()
        self.judge = QualityJudge(settings.WS_HEARTBEAT_INTERVAL_MS)
        self.bucket = TokenBucket(
            rate_per_s=settings.WS_RATE_LIMIT_PER_S, burst=settings.WS_RATE_LIMIT_BURST, now=time.monotonic()
        )
        self.abuse = AbuseWindow(
            limit=settings.WS_RATE_LIMIT_ABUSE_COUNT, window_s=settings.WS_RATE_LIMIT_ABUSE_WINDOW_S
        )
        self.connection_id = uuid.uuid4().hex[:12]
        self.counted_open = False
        self.connected_at_ms = now_ms()
        self._states: dict[type, object] = {}
        self.layer_failed = False

    def state(self, kind: type[S]) -> S:
        """This connection's instance of an app's state class (made on first use, with no arguments)."""
        value = self._states.get(kind)
        if not isinstance(value, kind):  # absent (None): every value stored is an instance of its key
            value = self._states[kind] = kind()
        return value

    def has_state(self, kind: type) -> bool:
        return kind in self._states

    # --- The loop -------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        # Channels' AsyncConsumer.__call__, except that channel-layer events come through
        # _receive_event, so a Redis restart does not end every socket with 1011.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        # Looked up once: a stream that conflates (prices) asks for the backlog on every message it offers.
        self._transport = internals.socket_transport(send)
        internals.release_upgraded_channel(self._transport)
        inbox = internals.server_inbox(receive)
        self._inbox = inbox
        if inbox is None:
            with contextlib.suppress(StopConsumer):
                await await_many_dispatch([receive, self._receive_event], self.dispatch)
            return
        # Frames arrive through a queue (daphne's, and Channels' test communicator):
        # channel-layer events join that queue, so one loop takes both in order, without the
        # task and the wait that await_many_dispatch creates for every message. The embedded
        # layer puts them there itself; for another layer a task moves them across.
        delivers = getattr(self.channel_layer, "delivers_into_inboxes", None)
        pump = None
        if delivers is not None and delivers():
            self.channel_layer.deliver_into(self.channel_name, inbox)
        else:
            pump = asyncio.ensure_future(self._pump_events(inbox))
        try:
            with contextlib.suppress(StopConsumer):
                while True:
                    await self.dispatch(await receive())
        finally:
            if pump is None:
                self.channel_layer.stop_delivering(self.channel_name)
            else:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            live_connections.forget_channel(self.channel_layer, self.channel_name)

    async def _pump_events(self, inbox: internals.Inbox) -> None:
        while True:
            inbox.put_nowait(await self._receive_event())

    async def _receive_event(self) -> dict[str, Any]:
        """The next channel-layer event. While the layer fails the socket stays open (heartbeats
        need no Redis); once it answers again the groups are joined anew (a restarted Redis has
        forgotten them) and the stream check resynchronises what was lost in between."""
        delay = 0.5
        while True:
            try:
                event: dict[str, Any] = await self.channel_layer.receive(self.channel_name)
                return event
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # redis-py turned a cancelled read into an error: the pump is being stopped
                if not self.layer_failed:
                    self.layer_failed = True
                    metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
                    logger.warning("channel layer receive failed; keeping the socket open", exc_info=True)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
            try:
                await self._rejoin_groups()
            except Exception:
                continue
            if self.layer_failed:
                self.layer_failed = False
                logger.info("channel layer back; rejoined %d groups", len(self.groups))

    async def _rejoin_groups(self) -> None:
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def layer_recovered(self, message: dict) -> None:
        """The layer's process reader could read again after failing (redis_layer): a restarted
        Redis has forgotten the groups, so join them anew; the stream check repairs the gap."""
        try:
            await self._rejoin_groups()
        except Exception:
            logger.warning("channel layer: could not rejoin %d groups", len(self.groups), exc_info=True)

    # Channels' dispatch hops to a thread before every message to close stale database
    # connections; database work here already runs in database_sync_to_async, which does
    # that, so heartbeats stay on the loop.
    async def dispatch(self, message: dict) -> None:
        try:
            if message["type"] == "websocket.receive":  # the hot path: straight to receive()
                await self.receive(message.get("text"), message.get("bytes"))
                return
            handler = getattr(self, get_handler_name(message), None)
            if handler is not None:
                await handler(message)
                return
            event_handler = registry.EVENT_ROUTES.get(message["type"])
            if event_handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            if self.opened and not self.ending:
                await event_handler(self, message)
        except StopConsumer:
            raise
        except SERVICE_DOWN:
            # Client messages have their own error path (receive); this is the rest: the
            # connect-time snapshot, an event's follow-up. Tell the client, keep the socket.
            logger.exception("service unavailable while handling %s", message.get("type"))
            await self._report_failure(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))
        except Exception:
            logger.exception("unexpected error while handling %s", message.get("type"))
            await self._report_failure(ProtocolError(ErrorCode.INTERNAL_ERROR))

    async def _report_failure(self, error: ProtocolError) -> None:
        if not self.opened or self.ending:
            return
        with contextlib.suppress(Exception):
            await self.send_message(error.to_message())

    # --- Handshake and close -------------------------------------------------------------

    async def connect(self) -> None:
        gate = admission()
        if gate.closing:
            metrics.CONNECTS.labels("server_shutdown").inc()
            await self.accept()
            await self.server_shutdown("server shutting down", held=len(live_connections))
            return
        if gate.layer_down:
            # Without the channel layer this process can deliver no push: send the client elsewhere.
            await self._refuse(
                ProtocolError(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    "this server cannot reach its channel layer; connect to another",
                    retry_after_ms=gate.retry_after_ms(),
                )
            )
            return
        if not gate.enter():
            await self._refuse(ProtocolError(ErrorCode.SERVER_BUSY, retry_after_ms=gate.retry_after_ms()))
            return
        try:
            await self._handshake()
        finally:
            gate.leave()

    async def _handshake(self) -> None:
        handler = registry.session_handler()
        try:
            await handler.authenticate(self)
            await self._admit(handler.listens_to(self))
            opening = await handler.attach(self)
            self.session_id = opening.session_id
            self.expires_ms = opening.expires_ms
            # Read after joining the groups: a push numbered later reaches this connection live.
            self.stream = StreamCursor(self.session_id, await self._join_and_read_head(opening))
        except ProtocolError as error:
            await self._refuse(error)
            return
        except SERVICE_DOWN:
            logger.exception("service unavailable during handshake")
            await self._refuse(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))
            return
        self.opened = True
        bind(connectionId=self.connection_id, **(opening.log_fields or {}))
        await self.accept()
        first = await handler.opened(self)
        if first is None:
            return  # the handler ended the connection
        live_connections.add(self)
        metrics.CONNECTS.labels("accepted").inc()
        metrics.CONNECTIONS_OPEN.inc()
        self.counted_open = True
        await self.send_message(first)
        await registry.connected.run(self)
        if admission().closing and not self.ending:
            # SIGTERM landed while this handshake was under way, after the drain had told the others.
            await self.server_shutdown("server shutting down", held=len(live_connections))

    async def _admit(self, groups: tuple[str, ...]) -> None:
        """The connection limits, then the groups the handler listens to before attaching: one
        round trip where the layer's Redis holds the limits. Both before the session is attached:
        a refused connection must not replace the device's live one, and whatever happens from
        then on (a newer connection of the device) reaches this one. A refused connection leaves
        the groups when it closes."""
        slot = Slot(
            user_id=self.user_id,
            device_pk=self.device_key,
            ip=client_address(self.scope),
            connection_id=self.connection_id,
        )
        command = connection_acquire_command(slot=slot, layer=self.channel_layer) if groups else None
        replies = None
        if command is not None:
            try:
                replies = await self.channel_layer.group_trip(self.channel_name, before=[command], add=groups)
            except Exception:
                logger.exception("channel layer unavailable during handshake")
                raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "channel layer unavailable, retry later") from None
        if replies is None:
            self.connection_slot = await connection_acquire(
                user_id=slot.user_id, device_pk=slot.device_pk, ip=slot.ip, connection_id=slot.connection_id
            )
            await self.join(*groups)
            return
        self.groups.extend(groups)
        connection_acquired(slot=slot, reply=replies[0])
        self.connection_slot = slot

    async def join(self, *groups: str) -> None:
        """Join channel-layer groups for the life of the connection. During the handshake (the
        session handler may join before attaching, so it hears what happens meanwhile); without
        its groups a connection would miss replacement and invalidation, so a failing layer refuses it.
        A layer that can join several at once (`group_add_many`: Redis, one round trip) does."""
        if not groups:
            return
        try:
            many = getattr(self.channel_layer, "group_add_many", None)
            if many is not None:
                await many(list(groups), self.channel_name)
            else:
                for group in groups:
                    await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.exception("channel layer unavailable during handshake")
            raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "channel layer unavailable, retry later") from None
        self.groups.extend(groups)

    async def _join_and_read_head(self, opening: registry.Opening) -> StreamHead:
        """join(*opening.groups), then the stream head, then the opening's word to the others in
        its group (tell_others): one round trip when the layer's Redis holds the streams, which
        also says whether anyone else is in that group to be told."""
        groups, tell = opening.groups, opening.tell_others
        store = stream_store()
        url, command = store.head_command(self.session_id)
        trip = getattr(self.channel_layer, "group_trip", None)
        if groups and trip is not None and self.channel_layer.shares(url):
            after = [command]
            if tell is not None:
                after.append(self.channel_layer.group_members_command(tell[0]))
            try:
                replies = await trip(self.channel_name, add=groups, after=after)
            except Exception:
                logger.exception("channel layer unavailable during handshake")
                raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "channel layer unavailable, retry later") from None
            if replies is not None:
                self.groups.extend(groups)
                try:
                    if isinstance(replies[0], Exception):
                        raise replies[0]
                    head = store.head_of(replies[0])
                except Exception:
                    logger.exception("session stream unavailable during handshake")
                    raise ProtocolError(
                        ErrorCode.SERVICE_UNAVAILABLE, "session stream unavailable, retry later"
                    ) from None
                if tell is not None:
                    members = replies[1]
                    own = self.channel_name.encode()
                    if isinstance(members, Exception) or any(member != own for member in members):
                        await tell[1]()
                return head
        await self.join(*groups)
        head = await self._stream_head()
        if tell is not None:
            await tell[1]()
        return head

    async def _stream_head(self) -> StreamHead:
        try:
            return await stream_store().head(self.session_id)
        except Exception:
            logger.exception("session stream unavailable during handshake")
            raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "session stream unavailable, retry later") from None

    async def _refuse(self, error: ProtocolError) -> None:
        logger.info("handshake refused with %s", error.code)
        metrics.CONNECTS.labels(error.code.value).inc()
        self.ending = True
        await self.accept()
        await self.send_message(error.to_message())
        await self.close(code=int(error.spec.close or CloseCode.TRY_AGAIN_LATER))

    async def websocket_disconnect(self, message: dict) -> None:
        """Channels' own, except that the connection's bookkeeping comes first: leaving its groups
        needs the channel layer, and a Redis this host cannot reach would otherwise skip
        `disconnect` (the connection counted open for ever). Leaving them is best effort (a
        message to a closed channel expires unread), in one round trip with the connection-limit
        slot's release where the layer shares the limits' Redis; and without Channels' hop to a
        thread to close stale database connections (database work here runs in
        database_sync_to_async, which does)."""
        leaving = bool(self.groups) and not admission().layer_down
        trip = getattr(self.channel_layer, "group_trip", None) if leaving else None
        # Taken from the limiter before disconnect(), whose own release then has nothing left to do.
        release = connection_release_commands(slot=self.connection_slot, layer=self.channel_layer) if trip else []
        await self.disconnect(message["code"])
        if leaving:
            await self._leave_groups(trip, release)
        raise StopConsumer()

    async def _leave_groups(self, trip: Any, release: list[tuple[Any, ...]]) -> None:
        try:
            async with asyncio.timeout(GROUP_DISCARD_TIMEOUT_S):
                # Only where the layer shares its Redis (release), whose trips then never answer None.
                replies = await trip(self.channel_name, discard=self.groups, after=release) if trip else None
                if replies is None:
                    for group in self.groups:
                        await self.channel_layer.group_discard(group, self.channel_name)
                    return
        except Exception as error:
            # The memberships and the slot's entries expire by themselves; the rest of the close still runs.
            if release:
                connection_release_failed(error)
            logger.warning("could not leave %d groups on disconnect: %r", len(self.groups), error)
            return
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            connection_release_failed(failed)

    async def disconnect(self, code: int) -> None:
        live_connections.remove(self)
        metrics.DISCONNECTS.labels(str(code)).inc()
        if self.counted_open:
            self.counted_open = False
            metrics.CONNECTIONS_OPEN.dec()
        await connection_release(slot=self.connection_slot)
        if self.opened:
            live_connections.touch(self)
            logger.info("connection closed with code %s", code)
            await registry.disconnected.run(self)

    async def end(self, message: ServerMessage, close_code: CloseCode) -> None:
        """Send a last message and close. Idempotent: only the first reason is told."""
        if self.ending:
            return
        self.ending = True
        try:
            await self.send_message(message)
        finally:
            await self.close(code=int(close_code))

    # --- Frames ------------------------------------------------------------------------

    async def send_message(self, message: ServerMessage) -> None:
        # What AsyncWebsocketConsumer.send does for text, without its two extra calls per frame.
        await self.base_send({"type": "websocket.send", "text": message.to_json()})
        metrics.count_out(message.type)
        if isinstance(message, ErrorMessage):
            metrics.ERRORS.labels(message.code).inc()

    async def send_error(self, error: ProtocolError) -> None:
        await self.send_message(error.to_message())
        if error.spec.close is not None:
            self.ending = True
            await self.close(code=int(error.spec.close))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_message_monotonic = time.monotonic()
        self.last_message_ms = now_ms()
        if self.ending or not self.opened:
            return  # the connection is closing; its close frame is on the way
        live_connections.touch(self)
        request_id: str | None = None
        context: contextvars.Token | None = None
        try:
            data = self._parse(text_data, bytes_data)
            request_id = echoable_request_id(data.get("requestId"))
            if request_id is not None:
                context = bind(requestId=request_id)
            kind = data.get("type")
            metrics.count_in(kind)
            if not self.bucket.take(self.last_message_monotonic):
                if self.abuse.refuse(self.last_message_monotonic):
                    raise ProtocolError(ErrorCode.RATE_LIMIT_ABUSE)
                raise ProtocolError(ErrorCode.RATE_LIMITED)
            route = registry.ROUTES.get(kind) if isinstance(kind, str) else None
            if route is None:
                shown = kind[:64] if isinstance(kind, str) else kind if kind is None else type(kind).__name__
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type: {shown!r}")
            if _MAY_HOLD_SURROGATES.search(text_data or "") is not None:
                self._refuse_lone_surrogates(data, kind)
            try:
                message = route.message_class.model_validate(data)
            except ValidationError as error:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, f"invalid {kind} message", details=details_from(error, whole="(message)")
                ) from None
            await route.handler(self, message)
        except Exception as error:
            await self._answer_failure(error, request_id)
        finally:
            if context is not None:
                log_context.reset(context)

    async def _answer_failure(self, error: Exception, request_id: str | None) -> None:
        """The one place a client message's failure becomes the standard `error`."""
        if isinstance(error, ProtocolError):
            if error.request_id is None:
                error.request_id = request_id
            logger.info("replied with error %s", error.code)
        elif isinstance(error, SERVICE_DOWN):
            logger.error("service unavailable while handling a message", exc_info=error)
            error = ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, request_id=request_id)
        else:
            logger.error("unexpected error while handling a message", exc_info=error)
            error = ProtocolError(ErrorCode.INTERNAL_ERROR, request_id=request_id)
        await self.send_error(error)

    def answer_later(self, delay_s: float, finish: Callable[[], Awaitable[None]], *, request_id: str | None) -> None:
        """Finish a request after `delay_s` (a simulated latency) without holding up the connection's
        next messages: heartbeats and pushes go on meanwhile. `finish` then runs in the connection's
        own loop, so its reply still comes before the pushes its work causes. Its failure takes the
        same path as a handler's; after the socket closed it is only logged."""

        async def wait() -> None:
            await asyncio.sleep(delay_s)
            if self._inbox is not None:
                self._inbox.put_nowait({"type": "connection.answer", "finish": finish, "requestId": request_id})
            else:  # no queue of daphne's to join (a stock server): finish from here
                await self._answer(finish, request_id)

        if self._answering is None:
            self._answering = set()
        task = asyncio.ensure_future(wait())
        self._answering.add(task)  # referenced until done, or the collector could drop it
        task.add_done_callback(self._answering.discard)

    async def connection_answer(self, message: dict) -> None:
        finish = message.get("finish")
        if not callable(finish):  # only answer_later puts one in (a channel layer cannot carry a callable)
            logger.warning("a connection.answer event without a callable; ignored")
            return
        await self._answer(finish, message.get("requestId"))

    async def _answer(self, finish: Callable[[], Awaitable[None]], request_id: str | None) -> None:
        context = bind(requestId=request_id) if request_id is not None else None
        try:
            await finish()
        except Exception as error:
            if self.ending:
                logger.warning("a deferred answer failed after its socket closed", exc_info=error)
            else:
                await self._answer_failure(error, request_id)
        finally:
            if context is not None:
                log_context.reset(context)

    @staticmethod
    def _refuse_lone_surrogates(data: dict, kind: object) -> None:
        # A string with no UTF-8 form reaches no handler, database or reply (I-JSON, RFC 7493 §2.1).
        path = lone_surrogate_at(data)
        if path is not None:
            problem = "not valid Unicode: a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair)"
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"invalid {kind} message",
                details=[ErrorDetail(field=path or "(message)", problem=problem)],
            )

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict:
        if text_data is None:
            raise ProtocolError(ErrorCode.BINARY_NOT_SUPPORTED)
        limit = settings.WS_MAX_MESSAGE_BYTES
        # A character takes at most 4 bytes in UTF-8: only encode when it could matter.
        if len(text_data) * 4 > limit and len(text_data.encode("utf-8")) > limit:
            raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"message larger than {limit} bytes")
        try:
            data = json.loads(text_data)
        except (ValueError, RecursionError):
            raise ProtocolError(ErrorCode.INVALID_JSON) from None
        if not isinstance(data, dict):
            raise ProtocolError(ErrorCode.NOT_AN_OBJECT)
        return data

    def outbound_backlog_bytes(self) -> int | None:
        """Bytes written to this socket and not yet sent, when the server lets us see them."""
        transport = self._transport
        return None if transport is None else internals.unsent_bytes(transport)

    # --- Ends started by the maintenance task or the shutdown hook ------------------------

    def start_closing(self, work: Coroutine[object, object, None]) -> None:
        # One closing task per connection; the reference keeps it from being garbage-collected.
        if self.closing_task is None:
            self.closing_task = asyncio.ensure_future(work)
        else:
            work.close()

    def start_heartbeat_timeout(self) -> None:
        self.start_closing(
            self.end(
                Timeout(
                    timestamp=now_ms(),
                    timeoutMs=settings.WS_HEARTBEAT_TIMEOUT_MS,
                    lastMessageAt=self.last_message_ms,
                    message="no message within heartbeatTimeout",
                ),
                CloseCode.HEARTBEAT_TIMEOUT,
            )
        )

    def start_expiry(self) -> None:
        self.start_closing(registry.session_handler().expire(self))

    async def server_shutdown(self, reason: str, *, held: int = 1) -> None:
        """Tell the client to come back (elsewhere) in a while: one of `held` connections told at once."""
        retry_after = admission().shutdown_retry_after_ms(held=held)
        await self.end(
            Shutdown(timestamp=now_ms(), reason=reason, reconnectAfterMs=retry_after), CloseCode.SERVER_SHUTDOWN
        )

    def describe(self) -> dict[str, Any]:
        """This connection as the admin's live view and `service_status` show it."""
        fields: dict[str, Any] = {
            "connectionId": self.connection_id,
            "channelName": self.channel_name,
            "userId": self.user_id,
            "deviceId": self.device_id,
            "sessionId": self.session_id,
            "connectedAt": self.connected_at_ms,
            "lastMessageAt": self.last_message_ms,
        }
        fields.update(registry.session_handler().describe(self))
        for describer in registry.DESCRIBERS:
            fields.update(describer(self))
        return fields

    async def resynchronise(self, *, reason: ResyncReason, request_id: str | None, head: StreamHead) -> None:
        """Called by the stream cursor: the client must rebuild its state from a fresh snapshot."""
        await registry.session_handler().resynchronise(self, reason=reason, request_id=request_id, head=head)

    # --- Channel-layer events --------------------------------------------------------------

    async def connection_close(self, event: ConnectionCloseEvent) -> None:
        if self.opened:
            error = ProtocolError(ErrorCode.CLOSED_BY_OPERATOR, event["reason"] or None)
            await self.end(error.to_message(), CloseCode.CLOSED_BY_OPERATOR)

    async def session_push(self, event: SessionPushEvent) -> None:
        if not self.opened:
            return
        position = event["positions"].get(self.stream.session_id)
        if position is None:
            # Not numbered (the stream store was down, or a session opened after the push).
            await self.send(text_data=event["payload"])
            metrics.count_out(event["kind"])
        else:
            epoch, seq = position
            await self.stream.deliver(self, epoch=epoch, seq=seq, payload=event["payload"], kind=event["kind"])
        hook = registry.PUSH_HOOKS.get(event["kind"])
        if hook is not None:
            await hook(self, event["data"])
