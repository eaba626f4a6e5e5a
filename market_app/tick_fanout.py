"""One subscription to the ticks group per server process, fanned out locally.

A group of N connections costs the channel layer N sends (and, in memory, N deep
copies) per tick; instead each process joins the group once, with one channel of its
own, and hands each tick to the connections in it that follow the prices. Each tick
crosses the channel layer once per process, not once per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

from channels.layers import get_channel_layer
from tenacity import before_sleep_log, retry, wait_exponential

from market_app import metrics
from market_app.events import MarketTickEvent
from market_app.groups import ticks_group
from market_app.price_stream import deliver_tick
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.process import start_process_task

logger = logging.getLogger(__name__)

REJOIN_INTERVAL_S = 3600.0  # a layer may forget group members after a day (the embedded one does)
YIELD_EVERY = 200  # connections served before letting other work run


@retry(
    wait=wait_exponential(multiplier=0.1, max=5),
    before_sleep=before_sleep_log(logger, logging.WARNING, exc_info=True),
)
async def receive_tick(channel: str) -> MarketTickEvent:
    """The next tick on the relay's channel, retried with backoff while the channel layer fails."""
    event: MarketTickEvent = await get_channel_layer().receive(channel)
    return event


class TickRelay:
    def __init__(self) -> None:
        self.followers: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._channel: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_seq = 0
        self._newest: MarketTickEvent | None = None
        self._arrived = asyncio.Event()

    async def follow(self, conn: Connection) -> None:
        self.followers.add(conn)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            layer = get_channel_layer()
            self._loop = loop
            self._arrived = asyncio.Event()  # belongs to this loop
            self._newest = None
            self._channel = await layer.new_channel()
            await layer.group_add(ticks_group(), self._channel)
            self._task = start_process_task(self._run(self._channel), name="market-tick-relay")

    def unfollow(self, conn: Connection) -> None:
        self.followers.discard(conn)

    async def _run(self, channel: str) -> None:
        """Receive and deliver apart: while a pass over the followers runs, newer ticks replace the
        waiting one, so a pass slower than the tick interval skips ticks instead of falling behind
        (with thousands of followers a strictly-in-order relay fell minutes behind)."""
        receiving = asyncio.ensure_future(self._receive(channel))
        try:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                event = self._newest
                if event is None or event["seq"] <= self.last_seq:
                    continue  # one already relayed
                self.last_seq = event["seq"]
                for served, conn in enumerate(list(self.followers), start=1):
                    try:
                        await deliver_tick(conn, event)
                    except Exception:
                        logger.debug("tick not delivered to a closing connection", exc_info=True)
                    if served % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # lets the receiver take newer ticks meanwhile
        finally:
            receiving.cancel()

    async def _receive(self, channel: str) -> None:
        layer = get_channel_layer()
        rejoin_at = time.monotonic() + REJOIN_INTERVAL_S
        while True:
            event = await receive_tick(channel)
            if event.get("type") == "market.tick" and (self._newest is None or event["seq"] > self._newest["seq"]):
                if self._newest is not None and self._newest["seq"] > self.last_seq:
                    metrics.TICKS_SKIPPED_BY_RELAY.inc()  # replaced before it was relayed
                self._newest = event
                self._arrived.set()
                # Ticks can arrive together (a layer may deliver several at once): let an idle relay
                # take this one before the next replaces it. Only a pass already running skips.
                await asyncio.sleep(0)
            if time.monotonic() >= rejoin_at:
                rejoin_at = time.monotonic() + REJOIN_INTERVAL_S
                with contextlib.suppress(Exception):
                    await layer.group_add(ticks_group(), channel)


relay = TickRelay()
