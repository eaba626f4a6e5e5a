"""The session WebSocket: `ws://HOST/ws/session/?token=…&deviceId=…`.

Thin on purpose: it authenticates the handshake, parses and validates frames
against the declared schema, routes them to handlers (sessions_app.handlers and
the other apps' handlers), and turns every ProtocolError into the standard
`error` message. Group events from the channel layer end the connection when
another connection, an operator or an expiry says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Coroutine

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.db import DatabaseError
from pydantic import ValidationError

from config.logs import bind, log_context
from sessions_app import groups, metrics, selectors, services
from sessions_app.auth import AuthenticatedClient, authenticate_websocket_request
from sessions_app.connection_limits import Slot, client_address, connection_acquire, connection_release
from sessions_app.dispatch import EVENT_ROUTES, PUSH_HOOKS, ROUTES, run_connection_hooks
from sessions_app.errors import CloseCode, ErrorCode, ErrorMessage, ProtocolError, details_from
from sessions_app.events import (
    ConnectionCloseEvent,
    ConnectionReplaceEvent,
    SessionEndedEvent,
)
from sessions_app.live import live_connections
from sessions_app.messages import (
    Connected,
    ConnectionReplaced,
    SessionResync,
    Shutdown,
    Timeout,
)
from sessions_app.quality import QualityJudge
from sessions_app.ratelimit import AbuseWindow, TokenBucket
from sessions_app.schema import ServerMessage, epoch_ms, now_ms
from sessions_app.session_stream import ResyncReason, SessionPushEvent, StreamCursor, StreamHead, stream_store
from simulator_app.selectors import NO_SIMULATOR, SimulatorState, simulator_state_of_user

logger = logging.getLogger(__name__)

MAX_REQUEST_ID_LENGTH = 128


def _generation_and_simulator(client: AuthenticatedClient) -> tuple[int, SimulatorState]:
    return (
        selectors.device_connection_generation(client.device.pk),
        simulator_state_of_user(user_id=client.user.pk),
    )


class SessionConsumer(AsyncWebsocketConsumer):
    client: AuthenticatedClient | None = None
    connection_slot: Slot | None = None  # counted against the connection limits until disconnect
    session_id: uuid.UUID
    session_token: str
    session_status: str = "active"
    session_created_ms: int = 0
    session_expires_ms: int = 0
    generation: int = 0
    simulator: SimulatorState = NO_SIMULATOR
    stream: StreamCursor

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.groups = []
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
        # Per-connection state of other apps (the market stream), keyed by app.
        self.app_state: dict[str, object] = {}
        self.layer_failed = False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        # Channels' AsyncConsumer.__call__, except that channel-layer events come through
        # _receive_event, so a Redis restart does not end every socket with 1011.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        inbox = getattr(receive, "__self__", None)
        if not isinstance(inbox, asyncio.Queue):
            with contextlib.suppress(StopConsumer):
                await await_many_dispatch([receive, self._receive_event], self.dispatch)
            return
        # The server hands frames over through an asyncio.Queue (daphne, and Channels' test
        # communicator): channel-layer events join that queue, so one loop takes both in order,
        # without the task and the wait that await_many_dispatch creates for every message.
        # The embedded layer puts them there itself; for another layer a task moves them across.
        deliver_into = getattr(self.channel_layer, "deliver_into", None)
        pump = None
        if deliver_into is not None:
            deliver_into(self.channel_name, inbox)
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

    async def _pump_events(self, inbox: asyncio.Queue) -> None:
        while True:
            inbox.put_nowait(await self._receive_event())

    async def _receive_event(self) -> dict:
        """The next channel-layer event. While the layer fails the socket stays open (heartbeats
        need no Redis); once it answers again the groups are joined anew (a restarted Redis has
        forgotten them) and the stream check resynchronises what was lost in between."""
        delay = 0.5
        while True:
            try:
                return await self.channel_layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self.layer_failed:
                    self.layer_failed = True
                    metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
                    logger.warning("channel layer receive failed; keeping the socket open", exc_info=True)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
            try:
                for group in self.groups:
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                continue
            if self.layer_failed:
                self.layer_failed = False
                logger.info("channel layer back; rejoined %d groups", len(self.groups))

    # Channels' dispatch hops to a thread before every message to close stale
    # database connections; our database work already runs in
    # database_sync_to_async, which does that, so heartbeats stay on the loop.
    async def dispatch(self, message: dict) -> None:
        try:
            if message["type"] == "websocket.receive":  # the hot path: straight to receive()
                await self.receive(message.get("text"), message.get("bytes"))
                return
            handler = getattr(self, get_handler_name(message), None)
            if handler is not None:
                await handler(message)
                return
            event_handler = EVENT_ROUTES.get(message["type"])
            if event_handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            if self.client is not None and not self.ending:
                await event_handler(self, message)
        except StopConsumer:
            raise
        except DatabaseError:
            # Client messages have their own error path (receive); this is the rest: the
            # connect-time snapshot, an event's follow-up. Tell the client, keep the socket.
            logger.exception("database error while handling %s", message.get("type"))
            await self._report_failure(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))
        except Exception:
            logger.exception("unexpected error while handling %s", message.get("type"))
            await self._report_failure(ProtocolError(ErrorCode.INTERNAL_ERROR))

    async def _report_failure(self, error: ProtocolError) -> None:
        if self.client is None or self.ending:
            return
        with contextlib.suppress(Exception):
            await self.send_message(error.to_message())

    @property
    def device_id(self) -> str:
        assert self.client is not None
        return self.client.device.device_id

    @property
    def user_id(self) -> str:
        assert self.client is not None
        return str(self.client.user.pk)

    # --- Handshake and close -------------------------------------------------

    async def connect(self) -> None:
        try:
            client = await database_sync_to_async(authenticate_websocket_request)(self.scope)
            # Before the session is attached: a refused connection must not replace the device's live one.
            self.connection_slot = await connection_acquire(
                user_id=client.user.pk,
                device_pk=client.device.pk,
                ip=client_address(self.scope),
                connection_id=self.connection_id,
            )
            attached = await database_sync_to_async(services.session_attach)(user=client.user, device=client.device)
        except ProtocolError as error:
            await self._refuse(error)
            return
        except DatabaseError:
            logger.exception("database unavailable during handshake")
            await self._refuse(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))
            return

        self.client = client
        bind(
            connectionId=self.connection_id,
            userId=client.user.pk,
            deviceId=client.device.device_id,
            sessionId=str(attached.session.id),
        )
        self.session_id = attached.session.id
        self.session_token = attached.session_token
        self.session_status = attached.session.status
        self.session_created_ms = epoch_ms(attached.session.created_at)
        self.session_expires_ms = epoch_ms(attached.session.expires_at)
        self.generation = attached.generation

        try:
            for group in (
                groups.device_group(client.device.pk),
                groups.session_group(self.session_id),
                groups.user_group(client.user.pk),
            ):
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups.append(group)
            # Read after joining the groups: a push numbered later reaches this connection live.
            self.stream = StreamCursor(str(self.session_id), await stream_store().head(str(self.session_id)))
        except Exception:
            # Without its groups the connection would miss replacement and invalidation: refuse it.
            logger.exception("channel layer unavailable during handshake")
            self.groups.clear()
            await self._refuse(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, "channel layer unavailable, retry later"))
            return
        await self.accept()
        # Read after joining the groups, so no change announced in between is missed: a newer
        # connection of this device, or a simulator status change.
        newest, self.simulator = await database_sync_to_async(_generation_and_simulator)(client)
        if newest > self.generation:
            await self._replaced()
            return
        live_connections.add(self)
        metrics.CONNECTS.labels("accepted").inc()
        metrics.CONNECTIONS_OPEN.inc()
        self.counted_open = True
        await self.send_message(
            Connected(
                sessionId=str(self.session_id),
                sessionToken=self.session_token,
                userId=self.user_id,
                deviceId=self.device_id,
                heartbeatInterval=settings.WS_HEARTBEAT_INTERVAL_MS,
                heartbeatTimeout=settings.WS_HEARTBEAT_TIMEOUT_MS,
                timestamp=now_ms(),
                sessionStatus=self.session_status,
                createdAt=self.session_created_ms,
                expiresAt=self.session_expires_ms,
                resumed=attached.resumed,
                simulatorStatus=self.simulator.status,
                simulatorId=self.simulator.simulator_id,
                maxMessageBytes=settings.WS_MAX_MESSAGE_BYTES,
                sessionSeq=self.stream.start,
                sessionEpoch=self.stream.epoch,
            )
        )
        logger.info("connection opened (session %s)", "resumed" if attached.resumed else "new")
        await run_connection_hooks("connected", self)

    async def _refuse(self, error: ProtocolError) -> None:
        logger.info("handshake refused with %s", error.code)
        metrics.CONNECTS.labels(error.code.value).inc()
        self.ending = True
        await self.accept()
        await self.send_message(error.to_message())
        await self.close(code=int(error.spec.close or CloseCode.TRY_AGAIN_LATER))

    async def disconnect(self, code: int) -> None:
        live_connections.remove(self)
        await connection_release(slot=self.connection_slot)
        metrics.DISCONNECTS.labels(str(code)).inc()
        if self.counted_open:
            self.counted_open = False
            metrics.CONNECTIONS_OPEN.dec()
        if self.client is not None:
            live_connections.touch(self.session_id, self.client.device.pk)
            logger.info("connection closed with code %s", code)
            await run_connection_hooks("disconnected", self)

    async def end(self, message: ServerMessage, close_code: CloseCode) -> None:
        """Send a last message and close. Idempotent: only the first reason is told."""
        if self.ending:
            return
        self.ending = True
        try:
            await self.send_message(message)
        finally:
            await self.close(code=int(close_code))

    # --- Frames ---------------------------------------------------------------

    async def send_message(self, message: ServerMessage) -> None:
        # What AsyncWebsocketConsumer.send does for text, without its two extra calls per frame.
        await self.base_send({"type": "websocket.send", "text": message.to_json()})
        metrics.count_out(message.type)  # type: ignore[attr-defined]
        if isinstance(message, ErrorMessage):
            metrics.ERRORS.labels(message.code.value).inc()

    async def send_error(self, error: ProtocolError) -> None:
        await self.send_message(error.to_message())
        if error.spec.close is not None:
            self.ending = True
            await self.close(code=int(error.spec.close))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_message_monotonic = time.monotonic()
        self.last_message_ms = now_ms()
        if self.ending or self.client is None:
            return  # the connection is closing; its close frame is on the way
        live_connections.touch(self.session_id, self.client.device.pk)
        request_id: str | None = None
        context: contextvars.Token | None = None
        try:
            data = self._parse(text_data, bytes_data)
            candidate = data.get("requestId")
            if isinstance(candidate, str) and len(candidate) <= MAX_REQUEST_ID_LENGTH:
                request_id = candidate
                context = bind(requestId=request_id)
            kind = data.get("type")
            metrics.count_in(kind)
            if not self.bucket.take(self.last_message_monotonic):
                if self.abuse.refuse(self.last_message_monotonic):
                    raise ProtocolError(ErrorCode.RATE_LIMIT_ABUSE)
                raise ProtocolError(ErrorCode.RATE_LIMITED)
            route = ROUTES.get(kind) if isinstance(kind, str) else None
            if route is None:
                shown = kind[:64] if isinstance(kind, str) else kind if kind is None else type(kind).__name__
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type: {shown!r}")
            try:
                message = route.message_class.model_validate(data)
            except ValidationError as error:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, f"invalid {kind} message", details=details_from(error, whole="(message)")
                ) from None
            await route.handler(self, message)
        except ProtocolError as error:
            if error.request_id is None:
                error.request_id = request_id
            logger.info("replied with error %s", error.code)
            await self.send_error(error)
        except DatabaseError:
            logger.exception("database error while handling a message")
            await self.send_error(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, request_id=request_id))
        except Exception:
            logger.exception("unexpected error while handling a message")
            await self.send_error(ProtocolError(ErrorCode.INTERNAL_ERROR, request_id=request_id))
        finally:
            if context is not None:
                log_context.reset(context)

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

    # --- State the handlers use ------------------------------------------------

    def session_is_valid(self) -> bool:
        return self.session_status == "active" and self.session_expires_ms > now_ms()

    def require_active_session(self) -> None:
        if not self.session_is_valid():
            raise ProtocolError(ErrorCode.SESSION_NOT_ACTIVE, f"session is {self.session_status}")

    def observe_simulator(self, state: SimulatorState) -> bool:
        """Remember the user's simulator state unless it is older than what we know. True if remembered."""
        if state.is_not_older_than(self.simulator):
            self.simulator = state
            return True
        return False

    def require_own_device(self, device_id: str) -> None:
        if device_id != self.device_id:
            raise ProtocolError(ErrorCode.DEVICE_ID_MISMATCH, f"deviceId {device_id!r} is not this connection's")

    # --- Ends started by the maintenance task or the shutdown hook -----------

    def _start_closing(self, work: Coroutine[object, object, None]) -> None:
        # One closing task per connection; the reference keeps it from being garbage-collected.
        if self.closing_task is None:
            self.closing_task = asyncio.ensure_future(work)
        else:
            work.close()

    def start_heartbeat_timeout(self) -> None:
        self._start_closing(
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

    def start_session_expiry(self) -> None:
        async def expire() -> None:
            session = await database_sync_to_async(selectors.session_by_id)(self.session_id)
            if session is not None:
                await database_sync_to_async(services.session_expire)(session=session)
            # Everyone on the session group (this connection too) hears `session.ended`; close
            # here as well in case the channel layer is down.
            await self._session_ended("expired", "session reached expiresAt")

        self.session_status = "expired"
        self._start_closing(expire())

    async def server_shutdown(self, reason: str) -> None:
        retry_after = random.randint(settings.SHUTDOWN_RETRY_AFTER_MIN_MS, settings.SHUTDOWN_RETRY_AFTER_MAX_MS)
        await self.end(
            Shutdown(timestamp=now_ms(), reason=reason, reconnectAfterMs=retry_after), CloseCode.SERVER_SHUTDOWN
        )

    async def _replaced(self) -> None:
        await self.end(
            ConnectionReplaced(
                deviceId=self.device_id,
                sessionId=str(self.session_id),
                reason="a newer connection of this device took over the session",
                timestamp=now_ms(),
            ),
            CloseCode.CONNECTION_REPLACED,
        )

    async def _session_ended(self, status: str, reason: str) -> None:
        self.session_status = status
        code = ErrorCode.SESSION_EXPIRED if status == "expired" else ErrorCode.SESSION_STOPPED
        error = ProtocolError(code, f"session {status}: {reason}")
        await self.end(error.to_message(), error.spec.close or CloseCode.SESSION_STOPPED)

    def describe(self) -> dict[str, object]:
        """This connection as the admin's live view and `service_status` show it."""
        assert self.client is not None
        return {
            "connectionId": self.connection_id,
            "channelName": self.channel_name,
            "userId": self.client.user.pk,
            "username": self.client.user.get_username(),
            "deviceId": self.device_id,
            "sessionId": str(self.session_id),
            "connectedAt": self.connected_at_ms,
            "lastMessageAt": self.last_message_ms,
            "simulatorStatus": self.simulator.status,
        }

    async def resynchronise(self, *, reason: ResyncReason, request_id: str | None, head: StreamHead) -> None:
        """Tell the client its new stream position and send the state it must rebuild from."""
        assert self.client is not None
        state = await database_sync_to_async(simulator_state_of_user)(user_id=self.client.user.pk)
        changed = state != self.simulator and self.observe_simulator(state)
        await self.send_message(
            SessionResync(
                requestId=request_id,
                reason=reason,
                recovered=False,
                replayed=0,
                sessionSeq=head.seq,
                sessionEpoch=head.epoch,
                sessionStatus=self.session_status,
                simulatorStatus=self.simulator.status,
                simulatorId=self.simulator.simulator_id,
                timestamp=now_ms(),
            )
        )
        if changed:
            await run_connection_hooks("simulator_changed", self)
        await run_connection_hooks("resync", self)

    # --- Channel-layer events (sessions_app.events) -----------------------------

    async def connection_close(self, event: ConnectionCloseEvent) -> None:
        if self.client is not None:
            error = ProtocolError(ErrorCode.CLOSED_BY_OPERATOR, event["reason"] or None)
            await self.end(error.to_message(), CloseCode.CLOSED_BY_OPERATOR)

    async def connection_replace(self, event: ConnectionReplaceEvent) -> None:
        if event["generation"] > self.generation and self.client is not None:
            await self._replaced()

    async def session_push(self, event: SessionPushEvent) -> None:
        if self.client is None:
            return
        position = event["positions"].get(self.stream.session_id)
        if position is None:
            # Not numbered (the stream store was down, or a session opened after the push).
            await self.send(text_data=event["payload"])
            metrics.count_out(event["kind"])
        else:
            epoch, seq = position
            await self.stream.deliver(self, epoch=epoch, seq=seq, payload=event["payload"], kind=event["kind"])
        hook = PUSH_HOOKS.get(event["kind"])
        if hook is not None:
            await hook(self, event["data"])

    async def session_ended(self, event: SessionEndedEvent) -> None:
        if self.client is not None and event["sessionId"] == str(self.session_id):
            await self._session_ended(event["status"], event["reason"])
