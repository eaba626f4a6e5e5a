"""The embedded mode's channel layer: Channels' in-memory layer, with its expiry sweep amortised.

InMemoryChannelLayer walks every channel and every group membership on each `receive()` and
`group_send()` to drop expired entries: O(connections) per call, so O(connections²) under a
connect storm (a quarter of the server's CPU at 4,000 connects in a profile). Expiry is
measured in seconds (messages after `expiry`, 60 s; memberships after `group_expiry`, a day),
so sweeping at most once a second changes nothing a client can see.
"""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer

SWEEP_INTERVAL_S = 1.0


class EmbeddedChannelLayer(InMemoryChannelLayer):
    _next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        super()._clean_expired()
