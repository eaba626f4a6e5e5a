"""Every use of a private part of daphne, Twisted, autobahn, channels or channels-redis, in one place.

Each use sits behind a Guard: the installed version must be in the range it was written and
tested against (of the library and of any library it leans on: redis-py under channels-redis),
and the attributes it touches must exist. Otherwise it falls back to the
stock behaviour and logs one warning naming the guard, so an upgrade that changes these
internals costs speed or a clean-up, never correctness. `check_all()` runs at start-up
(RealtimeConfig.ready) so the warnings show when the process starts, not at first use.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import importlib.metadata
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


@dataclass
class Guard:
    """A private part of a library, usable while `distribution` is within [minimum, below), and
    each of `also` (distribution, minimum, below) within its range."""

    name: str
    distribution: str
    minimum: str
    below: str
    probe: Callable[[], bool]
    fallback: str  # what happens instead, for the warning
    also: tuple[tuple[str, str, str], ...] = ()
    _verdict: bool | None = field(default=None, repr=False)

    def ranges(self) -> tuple[tuple[str, str, str], ...]:
        """Every (distribution, minimum, below) this guard was tested within."""
        return ((self.distribution, self.minimum, self.below), *self.also)

    def why_not(self) -> str | None:
        """None when the guard holds, else the reason it does not."""
        for distribution, minimum, below in self.ranges():
            installed = installed_version(distribution)
            if installed is None:
                return f"{distribution} is not installed"
            if not _numbers(minimum) <= _numbers(installed) < _numbers(below):
                return f"{distribution} {installed} is outside the tested range >={minimum},<{below}"
        version = installed_version(self.distribution)
        try:
            if not self.probe():
                return f"{self.distribution} {version} lacks the attributes it uses"
        except Exception as error:
            return f"probing {self.distribution} {version} failed: {type(error).__name__}: {error}"
        return None

    def holds(self) -> bool:
        if self._verdict is None:
            reason = self.why_not()
            self._verdict = reason is None
            if reason is not None:
                logger.warning("library internals: %s disabled (%s); %s", self.name, reason, self.fallback)
        return self._verdict

    def reset(self) -> None:
        """Forget the verdict (tests)."""
        self._verdict = None


def _twisted_tcp_probe() -> bool:
    import inspect

    from twisted.internet import abstract, tcp

    connection = tcp.Connection
    names = ("write", "writeSomeData", "TLS", "dataBuffer", "offset", "_writeDisconnected", "disconnecting")
    # `_tempDataLen` is set per instance; making one here would install Twisted's default reactor.
    return all(hasattr(connection, name) for name in names) and "_tempDataLen" in inspect.getsource(
        abstract.FileDescriptor.__init__
    )


def _reactor_probe() -> bool:
    reactor = sys.modules.get("twisted.internet.reactor")
    # Checked at start-up before daphne installed its reactor: then only the class can tell.
    if reactor is None:
        from twisted.internet import asyncioreactor

        return hasattr(asyncioreactor.AsyncioSelectorReactor, "callWhenRunning")
    return hasattr(reactor, "_asyncioEventloop")


def _daphne_probe() -> bool:
    from daphne.server import Server

    return hasattr(Server, "handle_reply") and hasattr(Server, "create_application")


def _redis_pool_probe() -> bool:
    import inspect

    import redis.asyncio
    from channels_redis.core import RedisChannelLayer

    return list(inspect.signature(RedisChannelLayer.create_pool).parameters) == ["self", "index"] and callable(
        getattr(redis.asyncio.BlockingConnectionPool, "from_url", None)
    )


def _redis_groups_probe() -> bool:
    import inspect

    from channels_redis.core import RedisChannelLayer

    source = inspect.getsource(RedisChannelLayer.group_add)
    return (
        all(
            callable(getattr(RedisChannelLayer, name, None))
            for name in ("_group_key", "consistent_hash", "connection", "require_valid_group_name")
        )
        and "zadd(group_key, {channel: time.time()})" in source
        and "expire(group_key, self.group_expiry)" in source
        and "zrem(key, channel)" in inspect.getsource(RedisChannelLayer.group_discard)
    )


def _memory_layer_probe() -> bool:
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    return isinstance(getattr(layer, "channels", None), dict) and callable(getattr(layer, "_clean_expired", None))


def _redis_layer_probe() -> bool:
    from channels_redis.core import RedisChannelLayer

    return isinstance(getattr(RedisChannelLayer(), "receive_buffer", None), dict)


def _redis_reader_probe() -> bool:
    import collections
    import inspect

    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer()
    send = inspect.getsource(RedisChannelLayer.send)
    single = inspect.getsource(RedisChannelLayer.receive_single)
    return (
        isinstance(getattr(layer, "receive_buffer", None), collections.defaultdict)
        and isinstance(getattr(layer, "client_prefix", None), str)
        and all(callable(getattr(layer, name, None)) for name in ("consistent_hash", "connection", "deserialize"))
        and "zadd(channel_key, {self.serialize(message): time.time()})" in send
        and 'message["__asgi_channel__"] = channel' in send
        and "index = self.consistent_hash(channel)" in single
        and 'channel = message["__asgi_channel__"]' in single
        and '"__asgi_channel__"' in inspect.getsource(RedisChannelLayer._map_channel_keys_to_connection)
    )


def _redis_process_shard_probe() -> bool:
    import inspect

    from channels_redis.core import RedisChannelLayer

    send = inspect.getsource(RedisChannelLayer.send)
    single = inspect.getsource(RedisChannelLayer.receive_single)
    mapping = inspect.getsource(RedisChannelLayer._map_channel_keys_to_connection)
    return (
        callable(getattr(RedisChannelLayer, "non_local_name", None))
        and "channel_non_local_name = self.non_local_name(channel)" in send
        and "index = self.consistent_hash(channel)" in send
        and "index = self.consistent_hash(channel)" in single
        and "idx = self.consistent_hash(channel_non_local_name)" in mapping
    )


def _autobahn_probe() -> bool:
    import inspect

    from autobahn.websocket import protocol
    from daphne.ws_protocol import WebSocketFactory

    setup = inspect.getsource(protocol.WebSocketProtocol._connectionMade)
    return (
        callable(getattr(protocol, "pformat", None))
        and "pformat(configAttrLog)" in setup
        and "if not hasattr(self, configAttr)" in setup
        and isinstance(getattr(protocol.WebSocketServerProtocol, "CONFIG_ATTRS", None), list)
        and callable(getattr(WebSocketFactory, "buildProtocol", None))
        and callable(getattr(WebSocketFactory, "setProtocolOptions", None))
    )


def _upgraded_channel_probe() -> bool:
    import inspect

    from daphne.http_protocol import WebRequest
    from twisted.internet import abstract
    from twisted.web import http

    return (
        "if not self._handlingRequest" in inspect.getsource(http.HTTPChannel.pauseProducing)
        and "transport.protocol = protocol" in inspect.getsource(WebRequest.process)
        and callable(getattr(abstract.FileDescriptor, "unregisterProducer", None))
    )


FAST_WRITES = Guard(
    "fast socket writes",
    "twisted",
    "24.0",
    "27.0",
    _twisted_tcp_probe,
    "frames go through Twisted's buffered writes",
)
TRANSPORT_BACKLOG = Guard(
    "socket backlog",
    "daphne",
    "4.1",
    "4.3",
    lambda: _daphne_probe() and _twisted_tcp_probe(),
    "connections cannot see their socket backlog, so nothing is conflated",
)
SERVER_INBOX = Guard(
    "server inbox",
    "daphne",
    "4.1",
    "4.3",
    _daphne_probe,
    "channel-layer events are read by a task of their own per connection",
)
REACTOR_LOOP = Guard(
    "graceful shutdown",
    "twisted",
    "24.0",
    "27.0",
    _reactor_probe,
    "SIGTERM stops daphne without `shutdown` messages and start-up hooks do not run",
)
MEMORY_LAYER = Guard(
    "embedded layer internals",
    "channels",
    "4.0",
    "4.4",
    _memory_layer_probe,
    "the in-memory layer sweeps on every call and queues events per connection",
)
REDIS_RECEIVE_BUFFER = Guard(
    "channels-redis receive buffers",
    "channels-redis",
    "4.1",
    "4.4",
    _redis_layer_probe,
    "a message arriving after its connection closed keeps a queue until the process restarts",
)
LEAN_PROTOCOLS = Guard(
    "lean WebSocket protocols",
    "autobahn",
    "24.4",
    "27.0",
    _autobahn_probe,
    "every connection copies autobahn's options onto itself and formats them for a debug log",
)
REDIS_LAYER_POOL = Guard(
    "channels-redis waiting pool",
    "channels-redis",
    "4.1",
    "4.4",
    _redis_pool_probe,
    "past redis-py's 100 connections a burst of channel-layer calls fails (MaxConnectionsError) instead of waiting",
    also=(("redis", "5.0", "9.0"),),  # the pool is redis-py's, built as channels-redis would build its own
)
REDIS_GROUP_JOINS = Guard(
    "channels-redis pipelined group joins",
    "channels-redis",
    "4.1",
    "4.4",
    _redis_groups_probe,
    "a connection joins its groups one at a time, two Redis round trips each",
    also=(("redis", "5.0", "9.0"),),  # a redis-py pipeline on channels-redis's own connections
)
REDIS_BATCHED_RECEIVE = Guard(
    "channels-redis batched receive",
    "channels-redis",
    "4.1",
    "4.4",
    _redis_reader_probe,
    "every connection reads its own events, one Redis message and four round trips at a time",
)
LEAN_INBOXES = Guard(
    "lean connection inboxes",
    "daphne",
    "4.1",
    "4.3",
    lambda: _daphne_probe() and _inbox_probe(),
    "every connection's frames and events queue in an asyncio.Queue of its own",
)
UPGRADED_CHANNEL = Guard(
    "upgraded HTTP channel",
    "twisted",
    "24.0",
    "27.0",
    _upgraded_channel_probe,
    "every connection keeps its HTTP upgrade request and headers for its whole life",
    also=(("daphne", "4.1", "4.3"),),
)
REDIS_PROCESS_SHARD = Guard(
    "channels-redis process channels on one shard",
    "channels-redis",
    "4.1",
    "4.4",
    _redis_process_shard_probe,
    "with several Redis hosts a send() to one connection lands on another shard than its group "
    "messages (the batched reader still reads them all; channels-redis's own receive would not)",
)
GUARDS = (
    FAST_WRITES,
    LEAN_PROTOCOLS,
    TRANSPORT_BACKLOG,
    SERVER_INBOX,
    REACTOR_LOOP,
    MEMORY_LAYER,
    REDIS_RECEIVE_BUFFER,
    REDIS_LAYER_POOL,
    REDIS_GROUP_JOINS,
    REDIS_BATCHED_RECEIVE,
    UPGRADED_CHANNEL,
    LEAN_INBOXES,
    REDIS_PROCESS_SHARD,
)


def check_all() -> dict[str, bool]:
    """Judge every guard now (one warning per guard that does not hold)."""
    return {guard.name: guard.holds() for guard in GUARDS}


# --- Twisted: write a frame at once when nothing is queued before it ---------------------------
# Twisted's transport buffers every write and sends it on the next loop iteration: each frame costs
# registering the socket for writing, an extra loop pass, the send, and unregistering it. Asyncio's
# transports try the send at once and buffer only what the kernel did not take; this does the same
# for plain (non-TLS) TCP connections. Order is kept: the fast path is taken only when the buffer is
# empty, and anything left over goes through Twisted's buffer as before.

_fast_writes_installed = False


def install_fast_socket_writes() -> bool:
    """Patch twisted.internet.tcp.Connection.write once per process. False when the guard does not hold."""
    global _fast_writes_installed
    if _fast_writes_installed:
        return True
    if not FAST_WRITES.holds():
        return False
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self: Any, data: bytes) -> None:
        if (
            data
            and not self.TLS
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and len(self.dataBuffer) == self.offset
        ):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):  # else the connection is lost: Twisted's own path reports it
                if sent == len(data):
                    return
                data = bytes(memoryview(data)[sent:])
        buffered_write(self, data)

    # Twisted's own write travels on the patch, for uninstall (a function attribute mypy cannot declare).
    write.buffered_write = buffered_write  # type: ignore[attr-defined]
    tcp.Connection.write = write  # type: ignore[method-assign]  # the patch itself, behind FAST_WRITES
    _fast_writes_installed = True
    return True


def uninstall_fast_socket_writes() -> None:
    """Put Twisted's own write back (tests)."""
    global _fast_writes_installed
    if not _fast_writes_installed:
        return
    from twisted.internet import tcp

    # The patched write carries Twisted's own as an attribute, which its declared type does not have.
    tcp.Connection.write = tcp.Connection.write.buffered_write  # type: ignore[method-assign,attr-defined]
    _fast_writes_installed = False


# --- autobahn: what every new WebSocket protocol instance does ----------------------------------
# autobahn's _connectionMade copies each of its ~30 options from the factory onto the new protocol
# instance unless the instance already has it, then pretty-prints the list for a debug log, whether
# or not debug logging is on. Options that live on the protocol's class cost neither the copies
# (memory held by every socket) nor the setattr calls; the log's text is made only if it is emitted.


class _FormattedWhenShown:
    """pprint.pformat of a value, done only when the log line is rendered."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        import pprint

        return pprint.pformat(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


_lean_protocols_installed = False

_ASSIGNED = re.compile(r"\bself\.([A-Za-z_]\w*)\s*=(?!=)")


def _instance_attribute_names(cls: type, *, exclude: Any = ()) -> tuple[str, ...]:
    """The attributes the classes of `cls` assign on `self` and none of them defines: slots for them
    hold a socket's protocol state in a fixed array instead of a dict of some 80 entries. A name
    with a class-level default is left out (a slot would hide the default), and anything assigned
    some other way still lands in the instance's __dict__, which the base classes keep."""
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            names.update(_ASSIGNED.findall(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
    defined = {name for klass in cls.__mro__ for name in vars(klass)}
    return tuple(sorted(names - defined - set(exclude)))


def install_lean_protocols() -> bool:
    """Give daphne's WebSocket factories a protocol class holding their options. False when the
    guard does not hold."""
    global _lean_protocols_installed
    if _lean_protocols_installed:
        return True
    if not LEAN_PROTOCOLS.holds():
        return False
    import types

    from autobahn.websocket import protocol
    from daphne.ws_protocol import WebSocketFactory

    build = WebSocketFactory.buildProtocol
    set_options = WebSocketFactory.setProtocolOptions

    def buildProtocol(self: Any, addr: Any) -> Any:
        if "_lean_base" not in self.__dict__:
            base = self.protocol
            options = {}
            for name in base.CONFIG_ATTRS:
                value = getattr(self, name)
                # A function kept on the class would come back bound to the protocol.
                options[name] = staticmethod(value) if isinstance(value, types.FunctionType) else value
            self._lean_base = base
            options["__slots__"] = _instance_attribute_names(base, exclude=options)
            self.protocol = type(base.__name__, (base,), options)
        return build(self, addr)

    def setProtocolOptions(self: Any, *args: Any, **kwargs: Any) -> None:
        set_options(self, *args, **kwargs)
        base = self.__dict__.pop("_lean_base", None)
        if base is not None:  # options changed: the next protocol class takes them anew
            self.protocol = base

    # The stock methods travel on the patches, for uninstall (function attributes mypy cannot declare).
    buildProtocol.stock = build  # type: ignore[attr-defined]
    setProtocolOptions.stock = set_options  # type: ignore[attr-defined]
    WebSocketFactory.buildProtocol = buildProtocol
    WebSocketFactory.setProtocolOptions = setProtocolOptions
    # autobahn only %-formats what pformat returns: an object that formats itself when shown will do.
    protocol.pformat = _FormattedWhenShown  # type: ignore[assignment]
    _lean_protocols_installed = True
    return True


def uninstall_lean_protocols() -> None:
    """Put autobahn's and daphne's own back (tests)."""
    global _lean_protocols_installed
    if not _lean_protocols_installed:
        return
    import pprint

    from autobahn.websocket import protocol
    from daphne.ws_protocol import WebSocketFactory

    WebSocketFactory.buildProtocol = WebSocketFactory.buildProtocol.stock
    WebSocketFactory.setProtocolOptions = WebSocketFactory.setProtocolOptions.stock
    protocol.pformat = pprint.pformat
    _lean_protocols_installed = False


# --- daphne: the bytes a connection's socket has not sent yet ------------------------------------


def socket_transport(send: Callable[..., Any]) -> Any | None:
    """The Twisted transport behind a consumer's `send`, or None when the server does not let us see it.

    Under daphne a consumer's `send` is `partial(server.handle_reply, protocol)`, and the
    protocol's transport holds the bytes written but not yet sent.
    """
    if not isinstance(send, functools.partial) or not send.args or not TRANSPORT_BACKLOG.holds():
        return None
    return getattr(send.args[0], "transport", None)


def release_upgraded_channel(transport: Any) -> bool:
    """Let go of the HTTP channel a WebSocket was upgraded from. True when it was released.

    daphne moves the socket to the WebSocket protocol but leaves the HTTP channel registered as
    the transport's producer, and through it the upgrade request with its headers, for the
    socket's whole life. Upgraded, that producer does nothing: its request never finishes, so it
    never pauses the socket. Unregistering it lets the collector free the channel.
    """
    if transport is None or not _lean_protocols_installed or not UPGRADED_CHANNEL.holds():
        return False
    from twisted.web import http

    producer = getattr(transport, "producer", None)
    if not isinstance(producer, http.HTTPChannel) or not producer._handlingRequest:
        return False
    transport.unregisterProducer()
    return True


def unsent_bytes(transport: Any) -> int | None:
    """Bytes written to `transport` (from socket_transport) and not yet sent."""
    try:
        unsent: int = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        return unsent
    except (AttributeError, TypeError):
        return None


def outbound_backlog_bytes(send: Callable[..., Any]) -> int | None:
    transport = socket_transport(send)
    return None if transport is None else unsent_bytes(transport)


# --- daphne: the queue a connection's frames arrive in --------------------------------------------


_EMPTY: Any = object()


class ConnectionInbox:
    """The queue daphne makes for each connection (its `get` is the application's `receive`), in
    what asyncio.Queue's four deques cost for uses daphne never makes: a bound, putters that wait,
    task_done and join. Unbounded; any number of writers and readers; `get` is cancel-safe as
    asyncio.Queue's is. One pending item takes no allocation (most connections hold none or one)."""

    __slots__ = ("_getters", "_head", "_rest")

    def __init__(self) -> None:
        self._head: Any = _EMPTY
        self._rest: collections.deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        if self._head is _EMPTY:
            return 0
        return 1 + (len(self._rest) if self._rest else 0)

    def empty(self) -> bool:
        return self._head is _EMPTY

    def put_nowait(self, item: Any) -> None:
        if self._head is _EMPTY:
            self._head = item
        elif self._rest is None:
            self._rest = collections.deque((item,))
        else:
            self._rest.append(item)
        self._wake_next()

    def get_nowait(self) -> Any:
        item = self._head
        if item is _EMPTY:
            raise asyncio.QueueEmpty
        rest = self._rest
        if rest:
            self._head = rest.popleft()
            if not rest:
                self._rest = None
        else:
            self._head = _EMPTY
        return item

    async def get(self) -> Any:
        while self._head is _EMPTY:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._head is not _EMPTY and not getter.cancelled():
                    self._wake_next()  # it was woken and then cancelled: the item is another's
                raise
        return self.get_nowait()

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None


Inbox = asyncio.Queue | ConnectionInbox


def _inbox_probe() -> bool:
    import inspect

    from daphne import http_protocol, server, ws_protocol

    stock = server.Server.create_application
    create = inspect.getsource(getattr(stock, "stock", stock))  # daphne's own, even once replaced
    uses = re.findall(r"application_queue\.(\w+)", inspect.getsource(http_protocol) + inspect.getsource(ws_protocol))
    return (
        "input_queue = asyncio.Queue()" in create
        and "receive=input_queue.get" in create
        and "return input_queue" in create
        and set(uses) == {"put_nowait"}
    )


_lean_inboxes_installed = False


def install_lean_inboxes() -> bool:
    """Give every connection daphne makes a ConnectionInbox instead of an asyncio.Queue. False when
    the guard does not hold."""
    global _lean_inboxes_installed
    if _lean_inboxes_installed:
        return True
    if not LEAN_INBOXES.holds():
        return False
    from daphne.server import Server

    stock = Server.create_application

    # daphne's Server.create_application with the one change: the queue it makes.
    def create_application(self: Any, protocol: Any, scope: dict) -> ConnectionInbox | None:
        assert "application_instance" not in self.connections[protocol]
        input_queue = ConnectionInbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=functools.partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue

    create_application.stock = stock  # type: ignore[attr-defined]
    Server.create_application = create_application
    _lean_inboxes_installed = True
    return True


def uninstall_lean_inboxes() -> None:
    """Put daphne's own back (tests)."""
    global _lean_inboxes_installed
    if not _lean_inboxes_installed:
        return
    from daphne.server import Server

    Server.create_application = Server.create_application.stock
    _lean_inboxes_installed = False


def server_inbox(receive: Callable[..., Any]) -> Inbox | None:
    """The queue behind `receive` (daphne's application queue, and Channels' test communicator),
    so channel-layer events can join it; None when `receive` is something else."""
    inbox = getattr(receive, "__self__", None)
    if not isinstance(inbox, asyncio.Queue | ConnectionInbox) or not SERVER_INBOX.holds():
        return None
    return inbox


# --- Twisted: the asyncio loop under daphne's reactor -----------------------------------------------


def running_reactor() -> Any | None:
    """The Twisted reactor daphne installed, or None outside daphne (never installs one)."""
    return sys.modules.get("twisted.internet.reactor")


def reactor_loop(reactor: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop daphne's AsyncioSelectorReactor runs on, or None."""
    if not REACTOR_LOOP.holds():
        return None
    loop = getattr(reactor, "_asyncioEventloop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


# --- channels: the in-memory layer's storage ---------------------------------------------------------


def memory_layer_internals() -> bool:
    """May the embedded layer use InMemoryChannelLayer's `channels` dict and `_clean_expired`?"""
    return MEMORY_LAYER.holds()


# --- channels-redis: the connection pool of each Redis host -------------------------------------
# channels-redis makes a plain redis-py pool, which from redis-py 8 holds at most 100 connections
# and raises past them: a storm of handshakes (three group_add each) or a burst of sends failed
# with "Too many connections". A blocking pool of CHANNEL_LAYER_POOL_SIZE waits (up to
# CHANNEL_LAYER_POOL_TIMEOUT_S) for a connection instead.


def waiting_redis_pool(host: dict[str, Any], *, size: int, timeout_s: float) -> Any | None:
    """A waiting pool for one channels-redis host (an `address` entry, or a Sentinel one:
    `sentinels` and `master_name`, built as channels-redis builds its own); None when the guard
    does not hold or the host is given otherwise: channels-redis then makes its own."""
    if not REDIS_LAYER_POOL.holds():
        return None
    import redis.asyncio

    if "address" in host:
        options = {key: value for key, value in host.items() if key != "address"}
        return redis.asyncio.BlockingConnectionPool.from_url(
            host["address"], max_connections=size, timeout=timeout_s, **options
        )
    if "master_name" not in host or "sentinels" not in host:
        return None
    import redis.asyncio.sentinel

    options = {key: value for key, value in host.items() if key not in ("master_name", "sentinels", "sentinel_kwargs")}
    pool_class = type(
        "WaitingSentinelConnectionPool",
        (redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool),
        {},
    )
    sentinel = redis.asyncio.sentinel.Sentinel(host["sentinels"], sentinel_kwargs=host.get("sentinel_kwargs"))
    return pool_class(host["master_name"], sentinel, max_connections=size, timeout=timeout_s, **options)


# --- channels-redis: joining several groups in one round trip -------------------------------------
# channels-redis's group_add is a ZADD and then an EXPIRE, awaited one after the other: a handshake
# joining three groups made six round trips to Redis. The same two commands per group, written as
# group_add writes them (its key, its shard, its expiry), go in one pipeline per shard.


async def redis_group_add_many(layer: Any, groups: list[str], channel: str) -> bool:
    """Add `channel` to every group, one pipeline per Redis shard; False (nothing done) when the
    guard does not hold: the caller then adds them one by one."""
    if not REDIS_GROUP_JOINS.holds():
        return False
    assert layer.require_valid_channel_name(channel), "Channel name not valid"
    by_shard: dict[int, list[str]] = {}
    for group in groups:
        assert layer.require_valid_group_name(group), "Group name not valid"
        by_shard.setdefault(layer.consistent_hash(group), []).append(group)
    for index, shard_groups in by_shard.items():
        await redis_group_trip(layer, index, channel, add=shard_groups)
    return True


@dataclass(frozen=True)
class GroupTrip:
    """What one caller sends in a group trip: raw commands `before`, `channel` joining the groups
    `add` (as group_add does) and leaving `discard` (as group_discard does), then raw commands
    `after`, in that order. The groups must all live on the shard the trip goes to."""

    channel: str
    add: Sequence[str] = ()
    discard: Sequence[str] = ()
    before: Sequence[tuple[Any, ...]] = ()
    after: Sequence[tuple[Any, ...]] = ()


async def redis_group_trips(layer: Any, index: int, trips: Sequence[GroupTrip]) -> list[list[Any] | Exception] | None:
    """Every trip in one round trip to shard `index` (one pipeline, in order). For each trip the
    replies of its `before` and `after` commands (an exception in place of one that failed), or
    the exception that failed one of its joins or leaves; None, with nothing done, when the guard
    does not hold. A failed round trip raises."""
    if not REDIS_GROUP_JOINS.holds():
        return None
    import time

    pipe = layer.connection(index).pipeline(transaction=False)
    now = time.time()
    for trip in trips:
        assert layer.require_valid_channel_name(trip.channel), "Channel name not valid"
        for command in trip.before:
            pipe.execute_command(*command)
        for group in trip.add:
            assert layer.require_valid_group_name(group), "Group name not valid"
            key = layer._group_key(group)
            pipe.zadd(key, {trip.channel: now})
            pipe.expire(key, layer.group_expiry)
        for group in trip.discard:
            assert layer.require_valid_group_name(group), "Group name not valid"
            pipe.zrem(layer._group_key(group), trip.channel)
        for command in trip.after:
            pipe.execute_command(*command)
    replies = await pipe.execute(raise_on_error=False)
    outcomes: list[list[Any] | Exception] = []
    at = 0
    for trip in trips:
        middle = len(trip.add) * 2 + len(trip.discard)
        own = replies[at : at + len(trip.before) + middle + len(trip.after)]
        at += len(own)
        failed = next(
            (reply for reply in own[len(trip.before) : len(trip.before) + middle] if isinstance(reply, Exception)), None
        )
        outcomes.append(failed if failed is not None else [*own[: len(trip.before)], *own[len(trip.before) + middle :]])
    return outcomes


def redis_group_members_command(layer: Any, group: str) -> tuple[Any, ...]:
    """The command listing `group`'s channels as channels-redis keeps them (its group key); only
    sent where the guard holds (in a group trip). Entries past the group expiry may be listed."""
    assert layer.require_valid_group_name(group), "Group name not valid"
    return ("ZRANGE", layer._group_key(group), 0, -1)


async def redis_group_trip(
    layer: Any,
    index: int,
    channel: str,
    *,
    add: Sequence[str] = (),
    discard: Sequence[str] = (),
    before: Sequence[tuple[Any, ...]] = (),
    after: Sequence[tuple[Any, ...]] = (),
) -> list[Any] | None:
    """One GroupTrip on its own (redis_group_trips): the replies of `before` and `after`; a failed
    join or leave raises; None, with nothing done, when the guard does not hold."""
    outcomes = await redis_group_trips(layer, index, [GroupTrip(channel, add, discard, before, after)])
    if outcomes is None:
        return None
    if isinstance(outcomes[0], Exception):
        raise outcomes[0]
    return outcomes[0]


# --- channels-redis: per-channel receive queues ------------------------------------------------------


def drop_receive_buffer(layer: object, channel: str) -> dict | None:
    """Drop the queue channels-redis keeps for `channel`; returns the buffer dict to watch, or None."""
    buffer = getattr(layer, "receive_buffer", None)
    if not isinstance(buffer, dict) or not REDIS_RECEIVE_BUFFER.holds():
        return None
    buffer.pop(channel, None)
    return buffer


# --- channels-redis: reading a process's messages in batches -------------------------------------
# Every message for a process's channels lands in one sorted set per process. channels-redis reads
# it one message at a time, in whichever connection's receive() holds its lock: an EVAL that
# restores a backup, the BZPOPMIN, a ZADD to the backup and a ZPOPMIN clean-up that the next read
# waits for. Under a storm of handshakes each of those hops waits its turn on a busy loop, so pushes
# to connections that never dropped queued for seconds. Here one task of the process pops up to
# `limit` messages per round trip. It skips the backup: that guards a read cancelled half-way,
# and this reader belongs to no connection that could cancel it.


def redis_receive_batch_key(layer: Any) -> tuple[int, str]:
    """The shard and key of this process's message set (as receive_single computes them)."""
    real_channel = f"specific.{layer.client_prefix}!"
    return layer.consistent_hash(real_channel), layer.prefix + real_channel


def redis_receive_batch_keys(layer: Any) -> list[tuple[int, str]]:
    """Every shard this process's messages can land on, with the key there: the process's own
    shard first, then the others. channels-redis's send() to one channel hashes its full name
    (channels#1492) while group_send and receive hash the process's part: from a sender whose
    `consistent_hash` is stock, a connection's direct messages may sit on any shard."""
    index, key = redis_receive_batch_key(layer)
    return [(index, key), *((other, key) for other in range(layer.ring_size) if other != index)]


def process_shard_value(value: str) -> str:
    """What channels-redis should hash to place `value`: a process-local channel
    (`specific.<process>!<id>`) by its process's part, so a send() to it lands on the shard its
    process reads and its group messages use; anything else (groups, general channels) as is."""
    if "!" not in value or not REDIS_PROCESS_SHARD.holds():
        return value
    return value[: value.index("!") + 1]


async def redis_receive_batch(
    layer: Any, *, limit: int, timeout_s: float, shard: int | None = None
) -> list[tuple[str | list[str], dict]]:
    """The next messages for this process's channels on `shard` (default: the process's own),
    oldest first, with the channel (or, from a group send, the list of channels) each is for: up
    to `limit`, waiting up to `timeout_s` for the first; [] on a quiet timeout. A message that
    does not decode is logged and skipped."""
    index, key = redis_receive_batch_key(layer)
    if shard is not None:
        index = shard
    connection = layer.connection(index)
    popped = await connection.zpopmin(key, limit)
    if not popped:
        first = await connection.bzpopmin(key, timeout=timeout_s)
        if first is None:
            return []
        popped = [(first[1], first[2])]
        if limit > 1:
            popped += await connection.zpopmin(key, limit - 1)
    out: list[tuple[str | list[str], dict]] = []
    for member, _score in popped:
        try:
            message = layer.deserialize(member)
            channel = message.pop("__asgi_channel__")
        except Exception:
            logger.exception("channel layer: dropped a message that does not decode")
            continue
        out.append((channel, message))
    return out


def redis_buffer_put(layer: Any, channel: str, message: dict) -> None:
    """Queue `message` where channels-redis's own receive() looks for `channel` (a bounded queue
    that drops its oldest message when full, as channels-redis does)."""
    layer.receive_buffer[channel].put_nowait(message)


async def redis_buffered_receive(layer: Any, channel: str) -> dict:
    """The next message for a process-local channel from its channels-redis queue (filled by the
    batch reader); the queue goes once it is empty, as in channels-redis."""
    queue: asyncio.Queue[dict] = layer.receive_buffer[channel]
    try:
        return await queue.get()
    finally:
        if queue.empty() and layer.receive_buffer.get(channel) is queue:
            del layer.receive_buffer[channel]
