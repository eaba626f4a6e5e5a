"""The production channel layer: channels-redis, with a connection pool that waits when it is full,
group joins that share a round trip, and one reader per process that takes its messages in batches.

Named by CHANNEL_LAYERS in config/settings.py when REDIS_URL is set. Every use of channels-redis's
internals is in `internals` (each behind a version guard that falls back to the stock behaviour).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from sessions_app.realtime import internals, metrics
from sessions_app.realtime.tasks import start_process_task

logger = logging.getLogger(__name__)

RECEIVE_BATCH = 200  # messages per round trip to Redis, at most
# How long one blocking read waits for a first message: well under any socket timeout (redis-py
# 8 times reads out after 5 s by default, channels-redis's own wait), and the longest a recovered
# Redis goes unnoticed.
READ_WAIT_S = 2.0
RECOVERED = {"type": "layer.recovered"}  # told to every connection once reading works again


class RedisLayer(RedisChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reader: ProcessReader | None = None

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
        return time.monotonic() - self.reader().last_read

    def reader(self) -> ProcessReader:
        """This event loop's reader, started on first use."""
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is None or reader.loop is not loop or reader.task.done():
            reader = self._reader = ProcessReader(self, loop)
        return reader


class ProcessReader:
    """Pops the process's channel-layer messages in batches and routes each to the inbox of the
    channel it is for; a message for a connection that has just closed is dropped."""

    def __init__(self, layer: RedisLayer, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.loop = loop
        self.inboxes: dict[str, internals.Inbox] = {}
        self.closed: dict[str, float] = {}  # channel -> until when late messages to it are dropped
        self._next_sweep = 0.0
        self.last_read = time.monotonic()  # when a read from Redis last finished, quiet or not
        self.task = start_process_task(self._run(), name="channel-layer-reader", loop=loop)

    async def _run(self) -> None:
        delay = 0.5
        failed = False
        while True:
            try:
                batch = await internals.redis_receive_batch(self.layer, limit=RECEIVE_BATCH, timeout_s=READ_WAIT_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # redis-py turned a cancelled read into an error; stop all the same
                if not failed:
                    failed = True
                    metrics.CHANNEL_LAYER_FAILURES.labels("receive").inc()
                    logger.warning("channel layer receive failed; keeping the sockets open", exc_info=True)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                continue
            self.last_read = time.monotonic()
            if failed:
                # A restarted Redis has forgotten the groups: each connection joins its own anew.
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
