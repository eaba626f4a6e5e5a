"""Admission control: how many handshakes a process works on at once, and when to come back.

A process restarted during a deploy sends all its clients back together. Queued handshakes only
wait, time out and retry, so past WS_MAX_HANDSHAKES_IN_FLIGHT a new one is refused at once with
`server_busy` (close 4013) and a `retryAfterMs`. Each refused client gets its own slot, 1/rate
apart after the handshakes under way, at the rate this process admits clients now: together they
come back no faster than it takes them. The `shutdown` hint is spread the same way, over the
connections the process holds divided by the fastest rate it has admitted clients at; a
handshake that reaches a stopping process gets that `shutdown` too, instead of a session the
process is about to drop.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from sessions_app.realtime import metrics
from sessions_app.realtime.errors import ErrorCode, ProtocolError

HANDSHAKES_IN_FLIGHT = metrics.gauge(
    "session_handshakes_in_flight",
    "Handshakes under way now; at WS_MAX_HANDSHAKES_IN_FLIGHT a process refuses new ones with server_busy.",
    multiprocess_mode="livesum",
)


class Admission:
    """Counts the handshakes in flight and measures how fast they complete (one process, its loop only)."""

    def __init__(
        self,
        *,
        limit: int,
        minimum_rate: float,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.limit = limit  # 0: no limit
        self.minimum_rate = minimum_rate
        self.clock = clock
        self.random = rng or random.Random()
        self.in_flight = 0
        self.closing = False  # the process is stopping: every new handshake is sent elsewhere
        self.layer_down = False  # the channel-layer watchdog tripped (watchdog.py): handshakes are refused
        self.peak_rate = 0  # the most handshakes completed within one second, over the process's life
        self._second = math.floor(clock())
        self._count = 0  # completed in the current second
        self._recent: deque[int] = deque(maxlen=5)  # completed in each of the last full seconds
        self._next_slot = 0.0

    def admit(self, *, layer_reachable: bool) -> ProtocolError | None:
        """Take a place for a new handshake, or the error that refuses it: without its channel
        layer this process can deliver no push (the client should go to another), and past
        WS_MAX_HANDSHAKES_IN_FLIGHT it is busy. Give the place back with leave()."""
        if self.layer_down or not layer_reachable:
            message = "this server cannot reach its channel layer; connect to another"
            return ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, message, retry_after_ms=self.retry_after_ms())
        if not self.enter():
            return ProtocolError(ErrorCode.SERVER_BUSY, retry_after_ms=self.retry_after_ms())
        return None

    def enter(self) -> bool:
        """Take a place for a new handshake; False when WS_MAX_HANDSHAKES_IN_FLIGHT are under way."""
        if self.limit and self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        HANDSHAKES_IN_FLIGHT.inc()
        return True

    def close(self) -> None:
        """The process is stopping (SIGTERM): from now on handshakes are told `shutdown` at once."""
        self.closing = True

    def leave(self) -> None:
        """A handshake that entered is done (admitted or refused)."""
        self.in_flight -= 1
        HANDSHAKES_IN_FLIGHT.dec()
        self._roll(self.clock())
        self._count += 1

    def _roll(self, now: float) -> None:
        second = math.floor(now)
        if second == self._second:
            return
        self.peak_rate = max(self.peak_rate, self._count)
        self._recent.append(self._count)
        for _ in range(min(second - self._second - 1, self._recent.maxlen or 0)):
            self._recent.append(0)  # seconds with nothing completed
        self._second, self._count = second, 0

    def rate(self) -> float:
        """Handshakes completed per second lately (the best of the last few seconds), at least minimum_rate."""
        self._roll(self.clock())
        return max(self.minimum_rate, self._count, max(self._recent, default=0))

    def retry_after_ms(self) -> int:
        """The hint for one refused handshake: the next free slot after those under way drain."""
        now = self.clock()
        rate = self.rate()
        start = max(now + self.in_flight / rate, self._next_slot)
        self._next_slot = start + 1 / rate
        # Jitter within the slot, so clients told the same slot do not land in the same millisecond.
        return math.ceil(1000 * (start - now + self.random.random() / rate))

    def shutdown_retry_after_ms(self, *, held: int) -> int:
        """`shutdown.reconnectAfterMs` for one of `held` connections: uniform over a window long
        enough for all of them at the fastest rate this process has admitted clients at."""
        rate = max(self.minimum_rate, self.peak_rate, self._count)
        low, high = settings.SHUTDOWN_RETRY_AFTER_MIN_MS, settings.SHUTDOWN_RETRY_AFTER_MAX_MS
        window = max(high - low, math.ceil(1000 * held / rate))
        window = min(window, max(high - low, settings.SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS))
        return low + self.random.randint(0, window)


_admission: Admission | None = None
ADMISSION_SETTINGS = frozenset(
    {"WS_MAX_HANDSHAKES_IN_FLIGHT", "WS_ADMISSION_MIN_RATE_PER_S", "CHANNEL_LAYERS", "CHANNEL_LAYER_WATCHDOG_MS"}
)


def admission() -> Admission:
    """This process's admission (made from the settings on first use)."""
    global _admission
    if _admission is None:
        _admission = Admission(
            limit=settings.WS_MAX_HANDSHAKES_IN_FLIGHT, minimum_rate=settings.WS_ADMISSION_MIN_RATE_PER_S
        )
    return _admission


def shutting_down() -> bool:
    """Is this process stopping? (/readyz says so, so a balancer sends handshakes elsewhere.)"""
    return _admission is not None and _admission.closing


@receiver(setting_changed)
def _forget_admission(setting: str, **kwargs: object) -> None:
    """Settings it is made from changed (tests do that): the next call makes it afresh."""
    global _admission
    if setting in ADMISSION_SETTINGS:
        _admission = None
