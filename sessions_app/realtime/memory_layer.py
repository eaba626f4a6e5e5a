"""The embedded mode's channel layer: Channels' in-memory layer, with its expiry sweep amortised
and messages for a connection put straight into that connection's inbox.

InMemoryChannelLayer walks every channel and every group membership on each `receive()` and
`group_send()` to drop expired entries: O(connections) per call, so O(connections²) under a
connect storm. Expiry is
measured in seconds (messages after `expiry`, 60 s; memberships after `group_expiry`, a day),
so sweeping at most once a second changes nothing a client can see.

A consumer that reads its events from the same queue as its socket frames (daphne's
application queue) can `deliver_into` it: a send to its channel then lands in that queue
directly. Otherwise every idle connection holds an asyncio.Queue here and a task blocked on it
to move each event across (memory per connection, and a loop pass per event).
"""

from __future__ import annotations

import contextlib
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from sessions_app.realtime.internals import Inbox, memory_layer_internals

SWEEP_INTERVAL_S = 1.0


class EmbeddedChannelLayer(InMemoryChannelLayer):
    _next_sweep = 0.0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.inboxes: dict[str, Inbox] = {}
        # Both tricks read the stock layer's private storage (sessions_app.realtime.internals).
        self.uses_internals = memory_layer_internals()

    def delivers_into_inboxes(self) -> bool:
        return self.uses_internals

    def deliver_into(self, channel: str, inbox: Inbox) -> None:
        """From now on, messages sent to `channel` go straight into `inbox`, oldest first."""
        self.require_valid_channel_name(channel)
        pending = self.channels.pop(channel, None)
        while pending is not None and not pending.empty():
            inbox.put_nowait(pending.get_nowait()[1])
        self.inboxes[channel] = inbox

    def stop_delivering(self, channel: str) -> None:
        """The consumer is gone: forget its inbox. It leaves its groups itself; if it could not,
        the first message to its channel expires unread and takes the memberships with it, as in
        the stock layer (dropping them here would scan every group on every disconnect)."""
        self.inboxes.pop(channel, None)

    async def send(self, channel: str, message: dict) -> None:
        inbox = self.inboxes.get(channel)
        if inbox is None:
            await super().send(channel, message)
            return
        assert isinstance(message, dict), "message is not a dict"
        if inbox.qsize() >= self.get_capacity(channel):
            raise ChannelFull(channel)
        inbox.put_nowait(deepcopy(message))  # as the stock layer: no recipient shares the sender's dict

    async def group_send(self, group: str, message: dict) -> None:
        if not self.uses_internals:
            await super().group_send(group, message)
            return
        # The stock layer starts a task per member; every send here completes without waiting.
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    def _clean_expired(self) -> None:
        if not self.uses_internals:
            super()._clean_expired()
            return
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        super()._clean_expired()
