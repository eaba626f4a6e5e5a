"""The asyncio client of the session protocol (docs/protocol.md), a Python twin of the browser library
tools/js-client/src/connection-manager.js: log in, open the socket, beat, correlate requests,
reconnect with backoff and recover the session stream, so that every numbered push is applied once
and in order across drops and server restarts."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import os
import random as _random
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, urlencode, urlsplit

import msgpack
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from tradesim.books import BookKeeper
from tradesim.errors import ApiError, NotConnected, ProtocolError, RequestTimeout, SessionEnded
from tradesim.http import api, obtain_ticket, obtain_token
from tradesim.protocol import (
    AccountSummary,
    ClientMessageType,
    Connected,
    SymbolQuote,
    UserOrder,
    UserPosition,
)
from tradesim.stream import QualityMeter, StreamStats, StreamTracker, backoff_delay_ms

log = logging.getLogger("tradesim")

State = Literal["idle", "connecting", "open", "reconnecting", "closed"]
Handler = Callable[[Any], Awaitable[object] | object]

# The WebSocket subprotocol that asks for MessagePack frames (JSON needs none: every server speaks it).
MSGPACK_SUBPROTOCOL = Subprotocol("tradesim.msgpack")
# Close codes after which the client reconnects (docs/protocol/codes.md); any other unknown code too.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 4008, 4011, 4012, 4013, 4014, 4029, 4030})
# Why the connection ended for good, by close code (the "ended" event and SessionEnded.reason).
FINAL_CODES = {
    4001: "auth_failed",
    4003: "device_rejected",
    4009: "connection_replaced",
    4010: "session_stopped",
    4015: "unsupported_subprotocol",
}
# Error codes after which a request may succeed if sent again later.
RETRYABLE_ERRORS = frozenset({"service_unavailable", "server_busy"})
RESUME_ATTEMPTS = 5  # `reconnect` requests per socket before a resync from the last position stands in
# Numbered pushes are fed to the stream tracker; these carry a position but set it instead.
POSITION_MESSAGES = frozenset({"connected", "reconnect_result", "session_resync"})

_counter = itertools.count(1)


def new_request_id() -> str:
    return f"py{int(time.time() * 1000):x}-{next(_counter)}-{secrets.token_hex(3)}"


def default_device_file(base_url: str) -> Path:
    """Where the device ID for this server is kept: $TRADESIM_HOME (default ~/.config/tradesim)."""
    home = Path(os.environ.get("TRADESIM_HOME") or Path.home() / ".config" / "tradesim")
    parts = urlsplit(base_url)
    return home / f"device-{parts.hostname or 'localhost'}-{parts.port or 80}"


def _of_account(path: str, account_id: int | None) -> str:
    return path if account_id is None else f"{path}?{urlencode({'accountId': account_id})}"


class Client:
    """One session connection with automatic reconnection.

    Events (`on(name, handler)`; a plain function is called in order as messages arrive, a
    coroutine function runs as a task, so it may await requests):
    every server message by its `type` (the generated TypedDicts of tradesim.protocol), "message"
    for all of them, "orderbook" {symbol, book} when a kept book changed (`books`), and "state"
    {state, previous}, "quality" {quality, rttMs}, "retry"
    {attempt, delayMs}, "resumed" (the reconnect_result), "token" {token, expiresAt},
    "ended" {reason, code, message}. Numbered pushes are emitted exactly once and in
    `sessionSeq` order, across reconnects; `stats` counts what the stream tracker did.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        device_file: str | Path | Literal["default"] | None = "default",
        backoff_base_ms: float = 500,
        backoff_cap_ms: float = 30_000,
        max_attempts: int | None = None,
        request_timeout_s: float = 10,
        gap_timeout_s: float = 3,
        use_tickets: bool = False,
        token_renew_before_s: float = 60,
        flow_control: bool = True,
        encoding: Literal["json", "msgpack"] = "json",
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_file = default_device_file(base_url) if device_file == "default" else device_file
        self.backoff_base_ms = backoff_base_ms
        self.backoff_cap_ms = backoff_cap_ms
        self.max_attempts = max_attempts
        self.request_timeout_s = request_timeout_s
        self.gap_timeout_s = gap_timeout_s
        self.use_tickets = use_tickets
        self.token_renew_before_s = token_renew_before_s
        # `subscribe_market` asks for flow control, and the client acknowledges the ticks it handled.
        self.flow_control = flow_control
        # The frames' encoding, chosen at the handshake by subprotocol (docs/protocol.md, "Encodings").
        self.encoding = encoding
        self.random = random

        self.state: State = "idle"
        self.token: str | None = None
        self.token_expires_at: int | None = None
        self.device_id: str | None = self._read_device_id()
        self.session: Connected | None = None  # the last `connected`
        self.session_token: str | None = None
        self.quality: QualityMeter | None = None
        self.last_rtt_ms: float | None = None
        self.stats = StreamStats()
        self.stream = StreamTracker(stats=self.stats)
        self.sockets_opened = 0
        self.ended: SessionEnded | None = None
        # The latest view of the market and the account, kept from the messages.
        self.simulator_status: str = "stopped"
        self.prices: dict[str, SymbolQuote] = {}
        self.orders: dict[str, UserOrder] = {}
        self.positions: dict[str, UserPosition] = {}
        self.account: AccountSummary | None = None
        # The subscribed books (`subscribe_market` with depth and bookDeltas), checked by their checksums.
        self.books = BookKeeper()

        self._handlers: dict[str, list[Handler]] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._socket: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._renewal: asyncio.Task[None] | None = None
        self._gap_timer: asyncio.Task[None] | None = None
        self._first: asyncio.Future[Connected] | None = None
        self._attempt = 0
        self._retry_after_ms: int | None = None  # from `shutdown`, or an error's retryAfterMs
        self._beat_sent_at: float | None = None
        self._last_heard = time.monotonic()  # when the open socket last brought a frame
        self._closing = False
        self._last_error: dict[str, Any] | None = None  # the last `error` not answering a request
        self._market_window = 0  # ticks the server sends past the last `market_ack` (0: no flow control)
        self._ticks_unacknowledged = 0

    # --- Public API ---------------------------------------------------------------------

    async def connect(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        device_id: str | None = None,
    ) -> Connected:
        """Log in (or use `token`, bound to `device_id` or the kept one), open the socket and wait
        for `connected`. Transient failures are retried with backoff (`max_attempts`); a final one
        (bad token, invalidated device) raises SessionEnded, as do bad credentials (ApiError)."""
        self.ended, self._closing = None, False
        if device_id:
            self.device_id = device_id
        if token:
            self.token = token
            if not self.device_id:
                raise ValueError("a token needs the device ID it is bound to")
        else:
            if username is None or password is None:
                raise ValueError("connect() needs username and password, or a token")
            await self.login(username, password)
        self._first = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(), name="tradesim-connection")
        return await self._first

    async def login(self, username: str, password: str) -> dict[str, Any]:
        """POST /api/auth/token/ with the kept device ID (a new one is issued and kept if it is
        another user's or invalidated)."""
        try:
            answer = await obtain_token(self.base_url, username, password, self.device_id)
        except ApiError as error:
            if not self.device_id or error.code not in ("device_taken", "device_invalidated"):
                raise
            answer = await obtain_token(self.base_url, username, password, None)
        self.token = answer["token"]
        self.token_expires_at = answer.get("expiresAt")
        self.device_id = answer["deviceId"]
        self._write_device_id(answer["deviceId"])
        return answer

    async def request(self, kind: ClientMessageType | str, /, *, timeout: float | None = None, **fields: Any) -> Any:
        """Send a request and return the reply carrying its requestId (a TypedDict of
        tradesim.protocol); raises ProtocolError on `error`, RequestTimeout, or NotConnected.
        Fields are the protocol's own names (orderType, limitPrice, ...); None values are left out."""
        socket = self._socket
        if self.state != "open" or socket is None:
            raise NotConnected(f"not connected ({self.state})")
        request_id = fields.pop("requestId", None) or new_request_id()
        message = {"type": kind, "requestId": request_id, "timestamp": int(time.time() * 1000)}
        message["deviceId"] = self.device_id
        if kind == "subscribe_market" and "flowControl" not in fields and self.flow_control:
            fields["flowControl"] = True
        message.update({key: value for key, value in fields.items() if value is not None})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        wait = self.request_timeout_s if timeout is None else timeout
        try:
            await socket.send(self._encode(message))
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            raise RequestTimeout(str(kind), request_id, wait) from None
        except ConnectionClosed:
            raise NotConnected(f"connection closed before {kind} was sent") from None
        finally:
            self._pending.pop(request_id, None)

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """An HTTP call of the REST API (/api/market/...) with this client's token."""
        return await api(self.base_url, method, path, body, token=self.token)

    async def risk_limits(self, *, account_id: int | None = None) -> dict[str, Any]:
        """An account's risk limits (default: the current account's) and the operator's caps: `{limits, caps}`
        (docs/protocol.md §4c)."""
        shown: dict[str, Any] = await self.api("GET", _of_account("/api/market/account/limits/", account_id))
        return shown

    async def set_risk_limits(self, *, account_id: int | None = None, **limits: float | int | None) -> dict[str, Any]:
        """Set every risk limit at once (`maxOrderValue`, `maxPositionValue`, `maxOpenOrders`, `maxLeverage`,
        `dailyLossLimit`; one left out or None is none); ApiError `limit_above_cap` names one above its cap."""
        path = _of_account("/api/market/account/limits/", account_id)
        shown: dict[str, Any] = await self.api("PUT", path, limits)
        return shown

    async def accounts(self, *, closed: bool = False) -> list[dict[str, Any]]:
        """Your accounts, oldest first: the open ones, and the closed ones with `closed` (docs/protocol.md §4f)."""
        listed: list[dict[str, Any]] = await self.api(
            "GET", "/api/market/accounts/" + ("?closed=true" if closed else "")
        )
        return listed

    async def open_account(self, name: str, **settings: Any) -> dict[str, Any]:
        """Open another account: `startingCash`, `default`, `profile`, `commissionPerShare`, ... as settings."""
        opened: dict[str, Any] = await self.api("POST", "/api/market/accounts/", {"name": name, **settings})
        return opened

    async def update_account(self, account_id: int, **settings: Any) -> dict[str, Any]:
        """Rename an account (`name`), make it the default (`default=True`), or change its profile or commission."""
        changed: dict[str, Any] = await self.api("PATCH", f"/api/market/accounts/{account_id}/", settings)
        return changed

    async def reset_account(self, *, account_id: int | None = None) -> dict[str, Any]:
        """Set an account (default: the current one) back to its starting cash; its simulator must be stopped
        (ApiError `account_in_use`). Its orders and fills stay in the journal (docs/protocol.md §4c)."""
        reset: dict[str, Any] = await self.api("POST", _of_account("/api/market/account/reset/", account_id))
        return reset

    async def close_account(self, account_id: int) -> dict[str, Any]:
        """Close an account (not the default one, nor one whose simulator is live); its history stays."""
        closed: dict[str, Any] = await self.api("POST", f"/api/market/accounts/{account_id}/close/")
        return closed

    async def datasets(self) -> list[dict[str, Any]]:
        """Your datasets of bars and the shared ones (docs/datasets.md)."""
        listed: list[dict[str, Any]] = await self.api("GET", "/api/market/datasets/")
        return listed

    async def upload_dataset(self, name: str, bars: str | bytes | os.PathLike[str]) -> dict[str, Any]:
        """Store a file of bars (a CSV's text, or a CSV's or Parquet file's bytes or path) as your dataset
        `name`; the server checks it whole (ApiError `invalid_dataset` names the first bad line and field)."""
        if isinstance(bars, os.PathLike):
            body = Path(bars).read_bytes()
        else:
            body = bars.encode() if isinstance(bars, str) else bars
        media = "application/vnd.apache.parquet" if body.startswith(b"PAR1") else "text/csv"
        path = f"/api/market/datasets/?{urlencode({'name': name})}"
        stored: dict[str, Any] = await api(
            self.base_url, "POST", path, body, token=self.token, timeout=60, content_type=media
        )
        return stored

    async def delete_dataset(self, dataset_id: str) -> None:
        """Delete one of your datasets."""
        await self.api("DELETE", f"/api/market/datasets/{dataset_id}/")

    async def report(self, simulator_id: str, *, benchmark: str | None = None, html: bool = False) -> Any:
        """The report of one of your replay simulators (docs/replay.md): its figures, equity and trades as a
        dict, or with `html` one self-contained page (str)."""
        query = {key: value for key, value in (("benchmark", benchmark), ("format", "html" if html else None)) if value}
        path = f"/api/market/simulators/{simulator_id}/report/" + (f"?{urlencode(query)}" if query else "")
        return await api(self.base_url, "GET", path, token=self.token, timeout=60)

    async def acknowledge(self, seq: int) -> None:
        """Tell the server bar (tick) `seq` was handled: a replay in lock-step shows the next one only then."""
        socket = self._socket
        if socket is None:
            raise NotConnected("not connected")
        with contextlib.suppress(ConnectionClosed):
            await socket.send(self._encode({"type": "market_ack", "deviceId": self.device_id, "seq": seq}))

    def _encode(self, message: Mapping[str, Any]) -> str | bytes:
        """A message as a frame of the connection's encoding."""
        if self.encoding == "msgpack":
            packed: bytes = msgpack.packb(message)
            return packed
        return json.dumps(message)

    def on(self, event: str, handler: Handler) -> Callable[[], None]:
        """Call `handler` for each `event`; returns a function that removes it."""
        self._handlers.setdefault(event, []).append(handler)
        return lambda: self._handlers.get(event, []).remove(handler)

    async def messages(self, *types: str) -> AsyncGenerator[Any, None]:
        """Every server message from now on (or only those `types`), until the client ends."""
        if self.ended is not None:
            return
        queue: asyncio.Queue[Any] = asyncio.Queue()
        removers = [self.on(kind, queue.put_nowait) for kind in (types or ("message",))]
        removers.append(self.on("ended", lambda _: queue.put_nowait(None)))
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            for remove in removers:
                remove()

    async def wait_ended(self) -> SessionEnded:
        """Until the connection ends for good (a final close code, gave_up, or close())."""
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._runner)
        return self.ended or SessionEnded("closed")

    async def close(self) -> None:
        """Close for good (no reconnection)."""
        self._closing = True
        socket = self._socket
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close(1000, "client closed")
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        current = asyncio.current_task()
        for task in [t for t in self._tasks if t is not current]:
            task.cancel()
        self._end("closed", None, "closed by the client")

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- Socket lifecycle ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._finished():
                code, reason = await self._one_socket()
                if self._finished():
                    return
                final = FINAL_CODES.get(code)
                if final:
                    self._end(final, code, reason)
                    return
                # RECONNECT_CODES and anything unknown (a proxy's code, a dead server): retry.
                if self.max_attempts is not None and self._attempt >= self.max_attempts:
                    self._end("gave_up", code, f"no connection after {self._attempt} attempts ({reason})")
                    return
                delay = self._retry_after_ms
                if delay is None:
                    delay = backoff_delay_ms(
                        self._attempt, base_ms=self.backoff_base_ms, cap_ms=self.backoff_cap_ms, random=self.random
                    )
                self._retry_after_ms = None
                self._attempt += 1
                self._set_state("reconnecting")
                self._emit("retry", {"attempt": self._attempt, "delayMs": delay, "code": code})
                await asyncio.sleep(delay / 1000)
        finally:
            self._stop_socket_tasks()

    def _finished(self) -> bool:
        return self._closing or self.ended is not None

    async def _socket_url(self) -> str:
        ws_base = "ws" + self.base_url.removeprefix("http")
        if not self.use_tickets:
            query = f"token={quote(self.token or '')}&deviceId={quote(self.device_id or '')}"
        else:
            ticket = await obtain_ticket(self.base_url, self.token or "")
            query = f"ticket={quote(ticket['ticket'])}&deviceId={quote(self.device_id or '')}"
        return f"{ws_base}/ws/session/?{query}"

    async def _one_socket(self) -> tuple[int, str]:
        """Open one socket and serve it until it closes; returns its close code and reason."""
        self._set_state("reconnecting" if self.session else "connecting")
        try:
            url = await self._socket_url()
        except ApiError as error:
            final = {401: 4001, 403: 4003}.get(error.status)
            return (final, error.message) if final else (1006, str(error))
        except OSError as error:
            return 1006, str(error)
        try:
            subprotocols = [MSGPACK_SUBPROTOCOL] if self.encoding == "msgpack" else None
            async with ws_connect(
                url, open_timeout=10, close_timeout=2, max_size=2**23, subprotocols=subprotocols
            ) as socket:
                self._socket = socket
                self.sockets_opened += 1
                try:
                    async for raw in socket:
                        await self._on_frame(socket, raw)
                except ConnectionClosed:
                    pass
                return socket.close_code or 1006, socket.close_reason or ""
        except (OSError, InvalidHandshake, TimeoutError) as error:
            return 1006, f"{type(error).__name__}: {error}"
        finally:
            self._socket = None
            self._stop_socket_tasks()
            self._fail_pending(NotConnected("connection closed"))

    async def _on_frame(self, socket: ClientConnection, raw: str | bytes) -> None:
        self._last_heard = time.monotonic()
        try:
            message = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            log.warning("tradesim: a frame that does not decode: %.200r", raw)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            log.warning("tradesim: a frame that is no message: %.200r", raw)
            return
        if message["type"] == "connected":
            self._on_connected(socket, cast(Connected, message))
        await self._dispatch(message)

    def _on_connected(self, socket: ClientConnection, message: Connected) -> None:
        resumed = self.session is not None
        self._market_window = self._ticks_unacknowledged = 0  # every tick until it subscribes again
        previous_token = self.session_token
        self.session = message
        self.session_token = message["sessionToken"]
        self._attempt = 0
        self._retry_after_ms = None
        self._last_error = None
        self.quality = QualityMeter(message["heartbeatInterval"])
        self.simulator_status = message["simulatorStatus"]
        if "tokenExpiresAt" in message:
            self.token_expires_at = message["tokenExpiresAt"]
        self._set_state("open")
        self._stop_socket_tasks()
        self._heartbeat = self._spawn(self._beat(socket, message["heartbeatInterval"], message["heartbeatTimeout"]))
        self._renewal = self._spawn(self._renew_token(socket))
        if resumed and previous_token and message["sessionId"] == self.stream.session_id:
            # After a drop: resume the session and get the pushes missed meanwhile (protocol.md 5).
            self._spawn(self._resume(previous_token, socket))
        else:
            # A new session (or the first connection): its stream starts where the server says.
            self.stream = StreamTracker(message["sessionId"], self.stats)
            self.stream.reset(message["sessionEpoch"], message["sessionSeq"])
        if self._first is not None and not self._first.done():
            self._first.set_result(message)

    async def _resume(self, previous_token: str, socket: ClientConnection) -> None:
        # `reconnect` on a busy server (service_unavailable, server_busy, no reply in time) is tried
        # again on this socket after the error's retryAfterMs or the backoff; past RESUME_ATTEMPTS,
        # or on another error, a resync from the last applied position stands in.
        for attempt in range(RESUME_ATTEMPTS):
            position = {} if self.stream.epoch is None else self._position()
            try:
                result = await self.request("reconnect", sessionToken=previous_token, **position)
            except NotConnected:
                return
            except (ProtocolError, RequestTimeout) as error:
                if self._socket is not socket or self.state != "open":
                    return
                retryable = isinstance(error, RequestTimeout) or error.code in RETRYABLE_ERRORS
                if not retryable or attempt + 1 >= RESUME_ATTEMPTS:
                    break
                hinted = error.retry_after_ms if isinstance(error, ProtocolError) else None
                self._retry_after_ms = None  # the slot was for this request, not for the next handshake
                delay = hinted if hinted is not None else self._backoff(attempt)
                await asyncio.sleep(delay / 1000)
                if self._socket is not socket or self.state != "open":
                    return  # that socket dropped meanwhile: the next one resumes for itself
                continue
            if result.get("recovered") is True:
                self.stats.recovered += 1
            elif result.get("recovered") is False:
                self.stats.not_recovered += 1
            self.stats.replayed += int(result.get("replayed") or 0)
            self._emit("resumed", result)
            return
        if self._socket is socket and self.stream.epoch is not None:
            await self._request_resync()

    async def _request_resync(self) -> None:
        self.stats.resyncs_requested += 1
        with contextlib.suppress(ProtocolError, RequestTimeout, NotConnected):
            await self.request("request_resync", **self._position())

    def _position(self) -> dict[str, Any]:
        return {"lastSessionSeq": self.stream.last, "sessionEpoch": self.stream.epoch}

    def _backoff(self, attempt: int) -> int:
        return backoff_delay_ms(attempt, base_ms=self.backoff_base_ms, cap_ms=self.backoff_cap_ms, random=self.random)

    def _end(self, reason: str, code: int | None, message: str) -> None:
        if self.ended is not None:
            return
        if self._last_error is not None and code is not None:
            message = f"{self._last_error.get('code')}: {self._last_error.get('message')}"
        self.ended = SessionEnded(reason, code, message)
        self._stop_socket_tasks()
        self._set_state("closed")
        self._emit("ended", {"reason": reason, "code": code, "message": message})
        if self._first is not None and not self._first.done():
            self._first.set_exception(self.ended)

    # --- Messages -----------------------------------------------------------------------

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "sessionSeq" in message and message["type"] not in POSITION_MESSAGES:
            for due in self.stream.accept(message):
                await self._deliver(due)
            self._watch_gap()
            return
        await self._deliver(message)
        kind = message["type"]
        if (kind == "reconnect_result" and message.get("success")) or kind == "session_resync":
            if kind == "session_resync":
                self.stats.replayed += int(message.get("replayed") or 0)
            for due in self.stream.reset(message["sessionEpoch"], message["sessionSeq"]):
                await self._deliver(due)
            self._watch_gap()

    def _watch_gap(self) -> None:
        if not self.stream.has_gap:
            if self._gap_timer is not None:
                self._gap_timer.cancel()
            self._gap_timer = None
        elif self._gap_timer is None:
            self._gap_timer = self._spawn(self._gap_expired())

    async def _gap_expired(self) -> None:
        await asyncio.sleep(self.gap_timeout_s)
        self._gap_timer = None
        # The server fills holes itself; one that stays means a push it could not replay in time.
        if self.stream.has_gap and self.state == "open":
            await self._request_resync()

    async def _deliver(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "heartbeat_ack":
            self._on_heartbeat_ack(message)
        elif kind == "shutdown":
            self._retry_after_ms = int(message["reconnectAfterMs"])
        if kind == "error" and message.get("requestId") is None:
            self._last_error = dict(message)  # what a close that follows is about (token_revoked, ...)
        if kind == "error" and isinstance(message.get("retryAfterMs"), int):
            # A busy server's slot (server_busy before close 4013): come back then, not on the backoff's.
            self._retry_after_ms = message["retryAfterMs"]
        self._update_view(message)
        request_id = message.get("requestId")
        waiting = self._pending.get(request_id) if isinstance(request_id, str) else None
        if waiting is not None and not waiting.done():
            if kind == "error":
                waiting.set_exception(ProtocolError(dict(message)))
            else:
                waiting.set_result(dict(message))
        self._emit("message", message)
        self._emit(kind, message)
        if kind == "market_subscription":
            self._market_window, self._ticks_unacknowledged = int(message.get("window") or 0), 0
            self.books.clear()
        if kind == "book" or (kind == "exchange_data" and "books" in message):
            self._apply_books(message)
        if kind == "exchange_data" and self._market_window:
            await self._acknowledge(int(message["seq"]))

    def _apply_books(self, message: Mapping[str, Any]) -> None:
        """Keep the books; emit "orderbook" {symbol, book} for each it changed, and ask again for any
        out of step (a missed update or a checksum that does not match)."""
        changed, stale = self.books.apply(message)
        for symbol in changed:
            self._emit("orderbook", {"symbol": symbol, "book": self.books.books[symbol]})
        if stale:
            log.info("tradesim: books out of step, asking for snapshots: %s", ", ".join(stale))
            self._spawn(self._request_books(stale))

    async def _request_books(self, symbols: list[str]) -> None:
        with contextlib.suppress(NotConnected, RequestTimeout, ProtocolError):
            await self.request("request_book", symbols=symbols)

    async def _acknowledge(self, seq: int) -> None:
        """A tick was handled (its handlers ran): acknowledge at half the window, so the server never waits."""
        self._ticks_unacknowledged += 1
        socket = self._socket
        if self._ticks_unacknowledged * 2 < self._market_window or socket is None:
            return
        self._ticks_unacknowledged = 0
        with contextlib.suppress(ConnectionClosed):
            await socket.send(self._encode({"type": "market_ack", "deviceId": self.device_id, "seq": seq}))

    def _update_view(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "exchange_data":
            self.prices.update(message["symbols"])
        elif kind == "exchange_data_status":
            self.prices.update(message["symbols"])
            self.orders = dict(message["userOrders"])
            self.positions = dict(message["userPositions"])
            self.account = message["account"]
        elif kind == "simulator_status_update":
            self.simulator_status = message["simulatorStatus"]
        elif kind in ("heartbeat_ack", "session_info", "reconnect_result", "session_resync"):
            self.simulator_status = message.get("simulatorStatus", self.simulator_status)
        elif kind in ("order_placed", "order_canceled") and "order" in message:
            self.orders[message["order"]["orderId"]] = message["order"]

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    # --- Heartbeats and the token -------------------------------------------------------

    async def _beat(self, socket: ClientConnection, interval_ms: int, timeout_ms: int) -> None:
        assert self.quality is not None
        self._beat_sent_at = None
        # Nothing heard, not even an ack, for longer than the server waits for us: the path to it is
        # gone (a pulled cable sends no close), so give the socket up and reconnect (docs/partitions.md).
        silence_s = (timeout_ms + interval_ms) / 1000
        while True:
            silent_for = time.monotonic() - self._last_heard
            if silent_for > silence_s:
                log.warning("tradesim: nothing heard for %.1f s; giving the socket up", silent_for)
                socket.transport.abort()  # no closing handshake: nobody would answer it
                return
            if self._beat_sent_at is not None:
                # The previous beat got no ack within a whole interval.
                self._emit("quality", {"quality": self.quality.missed(), "rttMs": None})
            self._beat_sent_at = time.monotonic()
            beat: dict[str, Any] = {
                "type": "heartbeat",
                "timestamp": int(time.time() * 1000),
                "deviceId": self.device_id,
                "connectionQuality": self.quality.quality,
                "sessionStatus": "active" if self.state == "open" else "pending",
                "simulatorStatus": self.simulator_status,
            }
            if self.last_rtt_ms is not None:
                beat["rttMs"] = self.last_rtt_ms
            try:
                await socket.send(self._encode(beat))
            except ConnectionClosed:
                return
            await asyncio.sleep(interval_ms / 1000)

    def _on_heartbeat_ack(self, message: Mapping[str, Any]) -> None:
        if self._beat_sent_at is None or self.quality is None:
            return
        rtt_ms = round((time.monotonic() - self._beat_sent_at) * 1000, 1)
        self._beat_sent_at = None
        self.last_rtt_ms = rtt_ms
        self._emit("quality", {"quality": self.quality.observe(rtt_ms), "rttMs": rtt_ms})

    async def _renew_token(self, socket: ClientConnection) -> None:
        while self.token_expires_at is not None and self._socket is socket:
            left = self.token_expires_at / 1000 - time.time()
            # Well before expiry, and at least half-way through what is left, so a short token is renewed too.
            await asyncio.sleep(max(0.0, left - min(self.token_renew_before_s, left / 2)))
            try:
                reply = await self.request("refresh_token")
            except (ProtocolError, RequestTimeout):
                if self.token_expires_at / 1000 - time.time() <= 1:
                    return
                continue
            except NotConnected:
                return
            self.token, self.token_expires_at = reply["token"], reply["expiresAt"]
            self._emit("token", {"token": reply["token"], "expiresAt": reply["expiresAt"]})

    # --- Plumbing -----------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _stop_socket_tasks(self) -> None:
        for task in (self._heartbeat, self._renewal, self._gap_timer):
            if task is not None:
                task.cancel()
        self._heartbeat = self._renewal = self._gap_timer = None
        self._beat_sent_at = None

    def _set_state(self, state: State) -> None:
        if state != self.state:
            previous, self.state = self.state, state
            self._emit("state", {"state": state, "previous": previous})

    def _emit(self, event: str, detail: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            try:
                result = handler(detail)
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                log.exception("tradesim: the %s handler failed", event)

    def _read_device_id(self) -> str | None:
        if self.device_file is None:
            return None
        try:
            return Path(self.device_file).read_text().strip() or None
        except OSError:
            return None

    def _write_device_id(self, device_id: str) -> None:
        if self.device_file is None:
            return
        path = Path(self.device_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(device_id + "\n")
