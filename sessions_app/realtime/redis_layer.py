"""The production channel layer: Redis pub/sub, written to the Channels layer specification
(https://channels.readthedocs.io/en/latest/channel_layer_spec.html) on Channels' public
BaseChannelLayer.

Why not channels-redis's RedisPubSubChannelLayer as it ships (docs/performance.md, "The channel
layer choice"): in a fleet restart a surviving process's handshakes waited up to 4.5 s in its
`new_channel` and `group_add`, one subscription after another, while the process was mostly idle.
Here a handshake makes no Redis call for its channel and at most one, shared, for its group:

- A process's channels share one Redis channel, its inbox (`<prefix><kind><process>!`):
  `new_channel()` only makes a name, and a message to one of those names is published to the
  inbox with the name and handed over here.
- A group is a Redis channel, `<prefix>__group__<group>` carrying the message as MessagePack (as
  channels-redis's pub/sub layer names and encodes them, so groups keep working across a rolling
  upgrade from it), subscribed once per process with a member; the process fans it out.
- Every subscription asked for while the loop was busy goes in one SUBSCRIBE; `group_add` and a
  first `receive` return once Redis has confirmed it, so nothing published later is missed.
- A name not made by `new_channel` ("simulators.assign") is a Redis channel of its own, heard by
  every process that receives on it.

A channel or group lives on the shard its Redis channel's name hashes to (redis_clients.shard_index),
the same in every process. Pub/sub keeps nothing: what is published while a subscriber is cut off
is lost, and the session streams repair pushes (docs/guarantees.md). Subscriptions belong to the
event loop that asked for them, as redis.asyncio connections do.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgpack
from channels.layers import BaseChannelLayer
from redis.asyncio.connection import Connection, parse_url
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, before_sleep_log, retry_if_exception_type, wait_exponential

from sessions_app.realtime import metrics
from sessions_app.realtime.inbox import Inbox
from sessions_app.realtime.redis_clients import RedisShard, ShardedRedis

logger = logging.getLogger(__name__)

KEEPALIVE_S = 5.0  # a silent subscriber connection is pinged after this; one more silence drops it
SWEEP_INTERVAL_S = 1.0
GROUP_PREFIX = "__group__"


class Subscriber:
    """One shard's subscriber connection for one event loop: what it should listen to, and the
    task that connects, subscribes, reads and reconnects."""

    def __init__(self, shard: RedisShard, layer: LoopState, *, timeout: float) -> None:
        self.shard, self.layer, self.timeout = shard, layer, timeout
        self.where = shard.master_name or urlsplit(shard.url or "").netloc.rpartition("@")[2]  # no password
        self.wanted: dict[str, asyncio.Future[None]] = {}  # Redis channel -> done once subscribed
        self.to_subscribe: list[str] = []
        self.to_unsubscribe: list[str] = []
        self.confirming: deque[tuple[str, asyncio.Future[None]]] = deque()  # SUBSCRIBEs sent, in order
        self.connection: Connection | None = None  # the one being read
        self.sent_on: Connection | None = None  # the one `confirming` is about
        self.send_lock = asyncio.Lock()
        self.send_scheduled = False
        self.sender: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.error: Exception | None = None  # why the last attempt to connect failed; None once connected
        self.attempt_failed: asyncio.Future[None] | None = None  # what waiting subscribers learn it from

    async def subscribe(self, name: str) -> None:
        """Listen to `name`; returns once Redis has confirmed it (at once when it already had).
        Raises at once while Redis cannot be reached, so a handshake is refused, not held."""
        confirmed = self.wanted.get(name)
        if confirmed is None:
            confirmed = self.wanted[name] = asyncio.get_running_loop().create_future()
            self.to_subscribe.append(name)
            self._start()
        if confirmed.done():
            return
        if self.error is None:
            if self.attempt_failed is None or self.attempt_failed.done():
                self.attempt_failed = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(self.timeout):
                await asyncio.wait({confirmed, self.attempt_failed}, return_when=asyncio.FIRST_COMPLETED)
        if not confirmed.done():
            raise RedisConnectionError(f"the channel layer cannot reach Redis at {self.where}: {self.error!r}")

    def unsubscribe(self, name: str) -> None:
        confirmed = self.wanted.pop(name, None)
        if confirmed is None:
            return
        if name in self.to_subscribe:  # never sent
            self.to_subscribe.remove(name)
            if not confirmed.done():
                confirmed.set_result(None)
            return
        self.to_unsubscribe.append(name)
        self._start()

    def _start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())  # it subscribes all that is wanted once connected
        elif self.connection is not None and not self.send_scheduled:
            # Next loop iteration: what the other handshakes of this one ask for goes along.
            self.send_scheduled = True
            self.sender = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        """Send what was asked and not sent yet, as one UNSUBSCRIBE and one SUBSCRIBE a round."""
        async with self.send_lock:  # one sender: `confirming` lists the SUBSCRIBEs in the order sent
            self.send_scheduled = False
            connection = self.connection
            if connection is None:
                return
            if connection is not self.sent_on:  # a new connection hears nothing yet: all of it again
                self.sent_on = connection
                self.confirming.clear()
                self.to_subscribe, self.to_unsubscribe = list(self.wanted), []
            try:
                # Checked before each command: redis-py would quietly open a new socket for a
                # connection its reader has closed, one nobody reads.
                while (self.to_subscribe or self.to_unsubscribe) and connection is self.connection:
                    dropped, self.to_unsubscribe = self.to_unsubscribe, []
                    if dropped:
                        await connection.send_command("UNSUBSCRIBE", *dropped)
                    if connection is not self.connection:
                        break
                    names = [name for name in self.to_subscribe if name in self.wanted]
                    self.to_subscribe = []
                    if names:
                        self.confirming.extend((name, self.wanted[name]) for name in names)
                        await connection.send_command("SUBSCRIBE", *names)
            except (RedisError, OSError) as error:
                logger.warning("channel layer: subscriptions on %s not sent (%r); reconnecting", self.where, error)
                await connection.disconnect()  # its reader fails, reconnects and subscribes it all again

    async def _run(self) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((RedisError, OSError)),
            wait=wait_exponential(multiplier=0.1, max=2),
            before_sleep=before_sleep_log(logger, logging.WARNING),
        ):
            with attempt:
                await self._connect_and_read()

    async def _connect_and_read(self) -> None:
        try:
            connection = await self._connect()
        except (RedisError, OSError) as error:
            self.error = error
            if self.attempt_failed is not None and not self.attempt_failed.done():
                self.attempt_failed.set_result(None)
            raise
        self.error = None
        try:
            self.connection = connection
            await self._send()
            pinged = False
            while True:
                reply = await connection.read_response(timeout=KEEPALIVE_S)
                if reply is None:  # silence: ping once, and give up on a second
                    if pinged:
                        raise ConnectionError(f"no answer from Redis within {2 * KEEPALIVE_S:g} s")
                    await connection.send_command("PING")
                    pinged = True
                    continue
                pinged = False
                self._take(reply)
        except (RedisError, OSError):
            metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
            raise
        finally:
            self.connection = None
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def _connect(self) -> Connection:
        options: dict[str, Any] = {"protocol": 2, "socket_timeout": self.timeout, "socket_connect_timeout": 2}
        if self.shard.url is not None:
            connection = Connection(**{**parse_url(self.shard.url), **options})
        else:
            sentinel = Sentinel(
                list(self.shard.sentinels),
                sentinel_kwargs={"password": self.shard.sentinel_password, "socket_timeout": 2},
            )
            host, port = await sentinel.discover_master(str(self.shard.master_name))
            connection = Connection(host=host, port=port, password=self.shard.password, db=self.shard.db, **options)
        await connection.connect()
        return connection

    def _take(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return  # a pong
        kind, name = reply[0], reply[1].decode()
        if kind == b"message":
            self.layer.deliver(name, reply[2])
        elif kind == b"subscribe":
            expected, confirmed = self.confirming.popleft() if self.confirming else ("", None)
            if expected != name:  # Redis answers in order: this would be a bug of ours
                logger.error("channel layer: Redis confirmed %s where %s was expected", name, expected)
            elif confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class LoopState:
    """The layer's channels, groups and subscriber connections in one event loop."""

    def __init__(self, layer: RedisPubSubLayer) -> None:
        self.layer = layer
        self.process = secrets.token_hex(6)
        self.names = itertools.count(1)
        self.inboxes: dict[str, Inbox[dict[str, Any]]] = {}
        # Channels nobody reads now (made and not read yet, or their reader left), oldest first:
        # kept for the layer's `expiry`, then dropped, as the specification has messages expire.
        self.unread: dict[str, float] = {}
        self.next_sweep = 0.0
        self.groups: dict[str, set[str]] = {}  # group -> this loop's member channels
        self.subscribers = [Subscriber(shard, self, timeout=layer.timeout) for shard in layer.shards]

    def subscriber(self, name: str) -> Subscriber:
        return self.subscribers[self.layer.redis.index(name)]

    def inbox(self, channel: str) -> Inbox[dict[str, Any]]:
        """`channel`'s inbox, kept until it has gone unread for the layer's `expiry`."""
        self.sweep()
        inbox = self.inboxes.get(channel)
        if inbox is None:
            inbox = self.inboxes[channel] = Inbox()
            self.unread[channel] = time.monotonic()
        return inbox

    def sweep(self) -> None:
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_INTERVAL_S
        cutoff = now - self.layer.expiry
        for channel, since in list(self.unread.items()):
            if since > cutoff:
                break
            del self.unread[channel]
            inbox = self.inboxes.get(channel)
            if inbox is not None and not inbox.waiters:
                del self.inboxes[channel]
                if "!" not in channel:
                    name = self.layer.redis_name(channel)
                    self.subscriber(name).unsubscribe(name)

    def deliver(self, name: str, data: bytes) -> None:
        """A message on one of this loop's Redis channels, to the channels it is for."""
        self.sweep()
        if name.startswith(self.layer.group_prefix):
            group = name[len(self.layer.group_prefix) :]
            members = self.groups.get(group, ())
            for channel in list(members):
                self._put(channel, data)
        elif name.endswith("!"):
            channel, message = msgpack.unpackb(data)
            self._put(channel, message)
        else:
            self._put(name[len(self.layer.prefix) :], data)

    def _put(self, channel: str, message: dict[str, Any] | bytes) -> None:
        """Hand `message` to `channel`'s inbox; packed bytes are unpacked for it alone (no shared dict)."""
        inbox = self.inboxes.get(channel)
        if inbox is None:  # its receiver has gone
            return
        unpacked: dict[str, Any] = msgpack.unpackb(message) if isinstance(message, bytes) else message
        if not inbox.put(unpacked, self.layer.get_capacity(channel)):
            metrics.CHANNEL_LAYER_FAILURES.labels("full").inc()
            logger.warning("channel %s is full; dropped a %s", channel, unpacked.get("type"))

    async def close(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.close()


class RedisPubSubLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self,
        shards: Sequence[Mapping[str, Any]] = (),
        prefix: str = "asgi",
        timeout: float = 15.0,
        capacity: int = 1000,
        channel_capacity: dict[str, int] | None = None,
        expiry: int = 60,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.shards = tuple(RedisShard.from_setting(shard) for shard in shards) or (RedisShard(url="redis://"),)
        self.prefix, self.timeout = prefix, timeout
        self.group_prefix = f"{prefix}{GROUP_PREFIX}"
        self.redis = ShardedRedis(self.shards, timeout=timeout)  # publishing, a pool per loop and shard
        self._loops: dict[asyncio.AbstractEventLoop, LoopState] = {}

    def _here(self) -> LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            state = self._loops[loop] = LoopState(self)
        return state

    def redis_name(self, channel: str) -> str:
        if "!" in channel:
            return f"{self.prefix}{channel[: channel.index('!') + 1]}"  # the process's inbox
        return f"{self.prefix}{channel}"

    async def _publish(self, name: str, payload: bytes) -> None:
        await self.redis.aio(self.redis.index(name)).publish(name, payload)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        name = self.redis_name(channel)
        payload = msgpack.packb([channel, message] if "!" in channel else message)
        await self._publish(name, payload)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        here = self._here()
        inbox = here.inbox(channel)
        here.unread.pop(channel, None)
        name = self.redis_name(channel)
        try:
            await here.subscriber(name).subscribe(name)
            return await inbox.get()
        except BaseException:
            if not inbox.waiters:  # its reader left (or could not listen): kept a while, then dropped
                here.unread[channel] = time.monotonic()
            raise

    async def new_channel(self, prefix: str = "specific.") -> str:
        here = self._here()
        channel = f"{prefix}{here.process}!{next(here.names)}"
        here.inbox(channel)  # a message sent before its first receive waits for it
        name = self.redis_name(channel)
        await here.subscriber(name).subscribe(name)  # the process's inbox: once per loop and kind
        return channel

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        here = self._here()
        members = here.groups.setdefault(group, set())
        members.add(channel)
        name = f"{self.group_prefix}{group}"
        await here.subscriber(name).subscribe(name)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        here = self._here()
        members = here.groups.get(group)
        if members is None:
            return
        members.discard(channel)
        if not members:
            del here.groups[group]
            name = f"{self.group_prefix}{group}"
            here.subscriber(name).unsubscribe(name)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        await self._publish(f"{self.group_prefix}{group}", msgpack.packb(message))

    async def flush(self) -> None:
        """Forget every channel, group and subscription of this loop (tests)."""
        here = self._loops.pop(asyncio.get_running_loop(), None)
        if here is not None:
            await here.close()
