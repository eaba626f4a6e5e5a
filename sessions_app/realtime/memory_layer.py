"""The embedded mode's channel layer: one process, in memory, written to the Channels layer
specification (https://channels.readthedocs.io/en/latest/channel_layer_spec.html) on Channels'
public BaseChannelLayer.

Channels' own InMemoryChannelLayer walks every channel and every group membership to drop expired
entries on each `receive()` and `group_send()`: O(connections) per call, so O(connections²) under
a connect storm or a fan-out. Expiry is measured in seconds (a message after `expiry`, 60 s; a
membership after `group_expiry`, a day), so this layer sweeps at most once a second and otherwise
behaves the same: a bounded queue per channel (ChannelFull past its capacity), messages copied so
no receiver shares the sender's dict, a channel whose message expired unread leaves its groups,
and a channel's queue goes once it is empty and nobody waits on it.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import deque
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from sessions_app.realtime.inbox import Inbox

SWEEP_INTERVAL_S = 1.0
GROUP_SWEEP_INTERVAL_S = 60.0


Item = tuple[float, dict[str, Any]]  # (when it expires, the message)


class EmbeddedChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.group_expiry = group_expiry
        self.clock = clock
        self.channels: dict[str, Inbox[Item]] = {}
        self.groups: dict[str, dict[str, float]] = {}  # group -> channel -> when it joined
        self._next_sweep = 0.0
        self._next_group_sweep = 0.0

    def _channel(self, name: str) -> Inbox[Item]:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Inbox()
        return channel

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        self._sweep()
        if not self._channel(channel).put((self.clock() + self.expiry, deepcopy(message)), self.get_capacity(channel)):
            raise ChannelFull(channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        self._sweep()
        queue = self._channel(channel)
        try:
            while True:
                expires, message = await queue.get()
                if expires >= self.clock():
                    return message
        finally:
            # Also on cancellation (the consumer left): an empty channel nobody reads takes no memory.
            if not queue.waiters and not queue.messages and self.channels.get(channel) is queue:
                del self.channels[channel]

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}embedded!{secrets.token_hex(8)}"

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self.groups.setdefault(group, {})[channel] = self.clock()

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        members = self.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.groups[group]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._sweep()
        for channel in list(self.groups.get(group, ())):
            # As Channels' layers do: a full member misses this message, the others get it.
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    async def flush(self) -> None:
        self.channels = {}
        self.groups = {}

    def _sweep(self) -> None:
        """Drop expired messages (their channels leave every group, as in Channels' layer) and
        emptied channels nobody waits on, at most once a second; expired memberships once a minute."""
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        expired: set[str] = set()
        for name, channel in list(self.channels.items()):
            if channel.messages:
                kept = deque(item for item in channel.messages if item[0] >= now)
                if len(kept) < len(channel.messages):
                    expired.add(name)
                channel.messages = kept or None
            if not channel.messages and not channel.waiters:
                del self.channels[name]
        if not expired and now < self._next_group_sweep:
            return
        self._next_group_sweep = now + GROUP_SWEEP_INTERVAL_S
        oldest = now - self.group_expiry
        for group, members in list(self.groups.items()):
            for name, joined in list(members.items()):
                if name in expired or joined < oldest:
                    del members[name]
            if not members:
                del self.groups[group]
