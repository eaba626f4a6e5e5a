"""The production channel layer: channels-redis, with a connection pool that waits when it is full,
group joins that share a round trip (with the connection limits and the session stream's head,
and with the other connections' joins meanwhile), and one reader per process that takes its
messages in batches.

Named by CHANNEL_LAYERS in config/settings.py when Redis is configured (one host per shard).
Every use of channels-redis's internals is in `internals` (each behind a version guard that
falls back to the stock behaviour).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from sessions_app.realtime import internals, metrics
from sessions_app.realtime.tasks import start_process_task

logger = logging.getLogger(__name__)

RECEIVE_BATCH = 200  # messages per round trip to Redis, at most
TRIP_BATCH = 200  # connections' group trips per pipeline, at most
# How long one blocking read waits for a first message: well under any socket timeout (redis-py
# 8 times reads out after 5 s by default, channels-redis's own wait), and the longest a recovered
# Redis goes unnoticed.
READ_WAIT_S = 2.0
RECOVERED = {"type": "layer.recovered"}  # told to every connection once reading works again


class RedisLayer(RedisChannelLayer):
    """With several `hosts` (REDIS_URLS, several Sentinel masters) channels-redis shards: a group
    lives on the shard of its name, a process's messages on the shard of its process name
    (`consistent_hash` below puts a send() to one of its channels there too), and the
    ProcessReader reads the process's key on every shard (docs/redis.md)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reader: ProcessReader | None = None
        self._trips: TripBatcher | None = None
        if self.ring_size > 1 and not (
            internals.REDIS_PROCESS_SHARD.holds() or internals.REDIS_BATCHED_RECEIVE.holds()
        ):
            logger.warning(
                "channel layer: %d Redis hosts and neither guard holds: a send() to one connection may "
                "land on a shard its process does not read (channels#1492)",
                self.ring_size,
            )

    def consistent_hash(self, value: str | bytes) -> int:
        if isinstance(value, str):
            value = internals.process_shard_value(value)
        index: int = super().consistent_hash(value)
        return index

    def create_pool(self, index: int) -> Any:
        pool = internals.waiting_redis_pool(
            self.hosts[index], size=settings.CHANNEL_LAYER_POOL_SIZE, timeout_s=settings.CHANNEL_LAYER_POOL_TIMEOUT_S
        )
        return pool if pool is not None else super().create_pool(index)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """group_add for several groups in one round trip per Redis shard."""
        if not await internals.redis_group_add_many(self, groups, channel):
            for group in groups:
                await self.group_add(group, channel)

    async def group_discard_many(self, groups: list[str], channel: str) -> None:
        """group_discard for several groups in one round trip (one shard), else one by one."""
        if not groups:
            return
        if self.ring_size != 1 or await internals.redis_group_trip(self, 0, channel, discard=groups) is None:
            for group in groups:
                await self.group_discard(group, channel)

    def shares(self, url: str | None) -> bool:
        """One shard, on the Redis at `url`: the kernel's own keys there (connection limits, session
        streams) can travel in the same round trip as the group joins (`group_trip`)."""
        return (
            url is not None
            and self.ring_size == 1
            and self.hosts[0].get("address") == url
            and internals.REDIS_GROUP_JOINS.holds()
        )

    def group_members_command(self, group: str) -> tuple[Any, ...]:
        """The raw command that lists `group`'s channels (bytes), to send in a group_trip."""
        return internals.redis_group_members_command(self, group)

    async def group_trip(
        self,
        channel: str,
        *,
        add: Sequence[str] = (),
        discard: Sequence[str] = (),
        before: Sequence[tuple[Any, ...]] = (),
        after: Sequence[tuple[Any, ...]] = (),
    ) -> list[Any] | None:
        """Raw commands `before`, the joins and leaves, then `after`, in one round trip shared with
        the trips other connections ask for meanwhile (a storm's handshakes); the replies of
        `before` and `after` (an exception in place of a command that failed; a failed join or
        leave raises), or None with nothing done when the layer has more than one shard or the
        guard does not hold (the caller then makes each call apart)."""
        if self.ring_size != 1 or not internals.REDIS_GROUP_JOINS.holds():
            return None
        loop = asyncio.get_running_loop()
        trips = self._trips
        if trips is None or trips.loop is not loop:
            trips = self._trips = TripBatcher(self, loop)
        return await trips(internals.GroupTrip(channel, add, discard, before, after))

    # --- Receiving: one reader per process (see internals.redis_receive_batch) ------------------

    def delivers_into_inboxes(self) -> bool:
        return internals.REDIS_BATCHED_RECEIVE.holds()

    def deliver_into(self, channel: str, inbox: internals.Inbox) -> None:
        """From now on, messages for `channel` go straight into `inbox` (a connection's queue)."""
        self.require_valid_channel_name(channel)
        self.reader().inboxes[channel] = inbox

    def stop_delivering(self, channel: str) -> None:
        reader = self._reader
        if reader is not None and reader.inboxes.pop(channel, None) is not None:
            reader.closed[channel] = time.monotonic() + self.expiry

    async def receive(self, channel: str) -> dict:
        if "!" not in channel or not self.delivers_into_inboxes():
            message: dict = await super().receive(channel)
            return message
        # The reader takes every message of the process: a process-local channel without an
        # inbox (the simulator worker, the tick relay, the readiness probe) reads what it queued.
        assert self.require_valid_channel_name(channel)
        self.reader()
        return await internals.redis_buffered_receive(self, channel)

    def stalled_for(self) -> float | None:
        """Seconds since this process's reader last finished a read from Redis (a quiet one ends
        within READ_WAIT_S); the watchdog's measure (live.py). Starts the reader if none runs yet;
        None without the batched reader (its guard failed)."""
        if not self.delivers_into_inboxes():
            return None
        return self.reader().stalled_for()

    def reader(self) -> ProcessReader:
        """This event loop's reader, started on first use."""
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is None or reader.loop is not loop or reader.task.done():
            reader = self._reader = ProcessReader(self, loop)
        return reader


class TripBatcher:
    """Group trips asked for while one is on its way share the next round trip, as
    sessions_app.realtime.batch does for the database: with nothing in flight a trip goes at
    once, so batching adds no wait, it only takes what queued anyway."""

    def __init__(self, layer: RedisLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self._pending: list[tuple[internals.GroupTrip, asyncio.Future[list[Any]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, trip: internals.GroupTrip) -> list[Any]:
        future: asyncio.Future[list[Any]] = self.loop.create_future()
        self._pending.append((trip, future))
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:TRIP_BATCH], self._pending[TRIP_BATCH:]
            batch = [(trip, future) for trip, future in batch if not future.done()]  # callers gone
            if not batch:
                continue
            outcomes: list[list[Any] | Exception] | None
            try:
                outcomes = await internals.redis_group_trips(self.layer, 0, [trip for trip, _ in batch])
            except Exception as error:
                outcomes = [error] * len(batch)
            if outcomes is None:  # the guard stopped holding: each caller's own trip (none then)
                outcomes = [RuntimeError("channels-redis group trips unavailable")] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


class ProcessReader:
    """Pops the process's channel-layer messages in batches and routes each to the inbox of the
    channel it is for; a message for a connection that has just closed is dropped."""

    def __init__(self, layer: RedisLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.inboxes: dict[str, internals.Inbox] = {}
        self.closed: dict[str, float] = {}  # channel -> until when late messages to it are dropped
        self._next_sweep = 0.0
        # When a read from Redis last finished, quiet or not, per shard read (None: the only one).
        self.last_read: dict[int | None, float] = {}
        self.started = time.monotonic()
        self.task = start_process_task(self._run_all(), name="channel-layer-reader", loop=loop)

    async def _run_all(self) -> None:
        """One read loop per shard the process's messages can land on (all of them, with several)."""
        if self.layer.ring_size == 1:
            await self._run(None)
            return
        shards = [index for index, _key in internals.redis_receive_batch_keys(self.layer)]
        await asyncio.gather(*(self._run(index) for index in shards))

    async def _read(self, shard: int | None) -> list:
        if shard is None:
            return await internals.redis_receive_batch(self.layer, limit=RECEIVE_BATCH, timeout_s=READ_WAIT_S)
        return await internals.redis_receive_batch(self.layer, limit=RECEIVE_BATCH, timeout_s=READ_WAIT_S, shard=shard)

    def stalled_for(self) -> float:
        """Seconds since the most behind of the shard loops last finished a read."""
        return time.monotonic() - min(self.last_read.values(), default=self.started)

    async def _run(self, shard: int | None) -> None:
        delay = 0.5
        failed = False
        self.last_read[shard] = time.monotonic()
        while True:
            try:
                batch = await self._read(shard)
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # redis-py turned a cancelled read into an error; stop all the same
                if not failed:
                    failed = True
                    metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
                    logger.warning(
                        "channel layer receive failed (shard %s); keeping the sockets open", shard or 0, exc_info=True
                    )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                continue
            self.last_read[shard] = time.monotonic()
            if failed:
                # A restarted (or failed-over) Redis has forgotten groups: each connection joins its own anew.
                failed, delay = False, 0.5
                logger.info("channel layer back; %d connections rejoin their groups", len(self.inboxes))
                for inbox in self.inboxes.values():
                    inbox.put_nowait(dict(RECOVERED))
            for channels, message in batch:
                for channel in channels if isinstance(channels, list) else (channels,):
                    self._route(channel, message)
            now = time.monotonic()
            if self.closed and now >= self._next_sweep:
                self._next_sweep = now + 1.0
                for channel, until in list(self.closed.items()):
                    if now >= until:
                        del self.closed[channel]

    def _route(self, channel: str, message: dict) -> None:
        inbox = self.inboxes.get(channel)
        if inbox is not None:
            if inbox.qsize() >= self.layer.get_capacity(channel):
                metrics.CHANNEL_LAYER_FAILURES.labels("overflow").inc()
                return
            inbox.put_nowait(message)
        elif channel not in self.closed:
            internals.redis_buffer_put(self.layer, channel, message)
