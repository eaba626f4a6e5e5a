"""The parts of the connection logic that need no socket, as in the browser library
(tools/js-client/src/connection-manager.js): backoff, connection quality, the session stream."""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Quality = Literal["good", "degraded", "poor"]


def backoff_delay_ms(
    attempt: int, *, base_ms: float = 500, cap_ms: float = 30_000, random: Callable[[], float] = _random.random
) -> int:
    """Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2^attempt))."""
    ceiling = min(cap_ms, base_ms * 2 ** max(0, attempt))
    return int(random() * ceiling)


class QualityMeter:
    """Connection quality from heartbeat round trips, judged like the server judges lateness: the
    worst of the last four decides; up to a quarter interval is good, up to one interval degraded,
    beyond (or a missed ack) poor."""

    def __init__(self, interval_ms: float, window: int = 4) -> None:
        self.interval_ms = interval_ms
        self.window = window
        self.samples: list[float] = []

    def observe(self, rtt_ms: float) -> Quality:
        self.samples.append(rtt_ms)
        del self.samples[: -self.window]
        return self.quality

    def missed(self) -> Quality:
        return self.observe(math.inf)

    @property
    def quality(self) -> Quality:
        if not self.samples:
            return "good"
        worst = max(self.samples)
        if worst <= self.interval_ms / 4:
            return "good"
        return "degraded" if worst <= self.interval_ms else "poor"


@dataclass
class StreamStats:
    """What the client did with the session stream; tests (and a curious bot) read these."""

    applied: int = 0  # numbered pushes delivered, each once
    duplicates: int = 0  # already applied, dropped
    held: int = 0  # arrived ahead of a hole, held until it filled
    resets: int = 0  # positions adopted from connected / reconnect_result / session_resync
    resyncs_requested: int = 0  # request_resync sent (a hole that stayed, or a failed reconnect)
    recovered: int = 0  # reconnect_result with recovered: true
    not_recovered: int = 0  # reconnect_result with recovered: false (a fresh snapshot follows)
    replayed: int = 0  # pushes the server said it replayed (reconnect_result / session_resync)


class StreamTracker:
    """Pushes carrying `sessionSeq`/`sessionEpoch` are applied exactly once and in order. A push ahead
    of a hole is held until the hole fills or the position is reset (reconnect_result,
    session_resync); one already applied is dropped."""

    def __init__(self, session_id: str | None = None, stats: StreamStats | None = None) -> None:
        self.session_id = session_id
        self.epoch: str | None = None
        self.last = 0
        self.held: dict[tuple[str, int], Mapping[str, Any]] = {}
        self.stats = stats if stats is not None else StreamStats()

    def reset(self, epoch: str, seq: int) -> list[Mapping[str, Any]]:
        """Adopt the server's position; returns held pushes now due."""
        self.epoch, self.last = epoch, seq
        self.stats.resets += 1
        self.held = {key: m for key, m in self.held.items() if key[0] == epoch and key[1] > seq}
        return self._drain()

    def accept(self, message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The messages to apply now, in order: none (held or duplicate), this one, or this one and
        those it unblocked."""
        if "sessionSeq" not in message:
            return [message]
        epoch, seq = message["sessionEpoch"], message["sessionSeq"]
        if self.epoch is None:
            self.epoch, self.last = epoch, seq
            self.stats.applied += 1
            return [message]
        if epoch == self.epoch and seq <= self.last:
            self.stats.duplicates += 1
            return []
        if epoch == self.epoch and seq == self.last + 1:
            self.last = seq
            self.stats.applied += 1
            return [message, *self._drain()]
        if (epoch, seq) not in self.held:
            self.stats.held += 1
        self.held[(epoch, seq)] = message
        return []

    @property
    def has_gap(self) -> bool:
        return bool(self.held)

    def _drain(self) -> list[Mapping[str, Any]]:
        due = []
        assert self.epoch is not None
        while (self.epoch, self.last + 1) in self.held:
            due.append(self.held.pop((self.epoch, self.last + 1)))
            self.last += 1
            self.stats.applied += 1
        return due
