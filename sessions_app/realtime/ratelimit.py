"""Per-connection message rate limiting: a token bucket, and a rule for sustained abuse.

Each connection may send WS_RATE_LIMIT_BURST messages at once and WS_RATE_LIMIT_PER_S per
second after that; acknowledgements (`market_ack`) have a budget of their own, WS_ACK_RATE_PER_S.
A message over the limit is answered with `error` `rate_limited` and not handled. A connection
that keeps going over the limit (WS_RATE_LIMIT_ABUSE_COUNT refusals within
WS_RATE_LIMIT_ABUSE_WINDOW_S) is closed with 4029.
"""

from __future__ import annotations

from django.conf import settings

from sessions_app.realtime.errors import ErrorCode


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, *, rate_per_s: float, burst: int, now: float) -> None:
        self.rate = rate_per_s
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AbuseWindow:
    """Counts refusals in a sliding window; `exceeded` once there are too many."""

    __slots__ = ("limit", "refusals", "window_s")

    def __init__(self, *, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        # A list, not a deque: most connections are never refused, and an empty deque is 600 bytes.
        self.refusals: list[float] = []

    def refuse(self, now: float) -> bool:
        self.refusals.append(now)
        stale = 0
        while stale < len(self.refusals) and now - self.refusals[stale] > self.window_s:
            stale += 1
        del self.refusals[:stale]
        return len(self.refusals) >= self.limit


class MessageRate:
    """One connection's limit, from the settings: None for a message it may send, else the code of
    its refusal (`rate_limited`, or `rate_limit_abuse` once it keeps going)."""

    __slots__ = ("abuse", "acknowledgements", "bucket")

    def __init__(self, now: float) -> None:
        self.bucket = TokenBucket(rate_per_s=settings.WS_RATE_LIMIT_PER_S, burst=settings.WS_RATE_LIMIT_BURST, now=now)
        # A lock-step backtest acknowledges every bar: hundreds a second, each cheap (no database).
        self.acknowledgements = TokenBucket(
            rate_per_s=settings.WS_ACK_RATE_PER_S, burst=settings.WS_ACK_RATE_PER_S, now=now
        )
        self.abuse = AbuseWindow(
            limit=settings.WS_RATE_LIMIT_ABUSE_COUNT, window_s=settings.WS_RATE_LIMIT_ABUSE_WINDOW_S
        )

    def refusal(self, now: float, *, acknowledgement: bool = False) -> ErrorCode | None:
        if (self.acknowledgements if acknowledgement else self.bucket).take(now):
            return None
        return ErrorCode.RATE_LIMIT_ABUSE if self.abuse.refuse(now) else ErrorCode.RATE_LIMITED
