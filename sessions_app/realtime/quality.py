"""The server's own judgement of a connection's quality, from heartbeat timing.

The client is asked to beat every `interval` ms. How late beats arrive (the gap
beyond the interval) shows delay, jitter and loss on the path. The worst of the
last few beats decides, so one bad beat shows at once and clears after a few good.
"""

from __future__ import annotations

from typing import Literal

Quality = Literal["good", "degraded", "poor"]

WINDOW = 4
GOOD_LATENESS = 0.25  # of the interval
DEGRADED_LATENESS = 1.0  # of the interval: beyond this a whole beat was missed


class QualityJudge:
    __slots__ = ("_interval_ms", "_last_arrival_ms", "_lateness")

    def __init__(self, interval_ms: int) -> None:
        self._interval_ms = interval_ms
        self._last_arrival_ms: float | None = None
        # A list, not a deque: four floats, and a deque costs 600 bytes per connection.
        self._lateness: list[float] = []

    def observe(self, arrival_ms: float) -> Quality:
        if self._last_arrival_ms is not None:
            gap = arrival_ms - self._last_arrival_ms
            self._lateness.append(max(0.0, gap - self._interval_ms) / self._interval_ms)
            if len(self._lateness) > WINDOW:
                del self._lateness[0]
        self._last_arrival_ms = arrival_ms
        return self.current()

    def current(self) -> Quality:
        worst = max(self._lateness, default=0.0)
        if worst <= GOOD_LATENESS:
            return "good"
        if worst <= DEGRADED_LATENESS:
            return "degraded"
        return "poor"
