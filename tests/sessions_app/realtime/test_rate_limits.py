"""The rate limiter's parts: a token bucket and a sliding window of abuse (the limits over a real
socket: tests/e2e/embedded/test_rate_limits.py)."""

from __future__ import annotations

from typing import Any

from sessions_app.realtime.errors import ErrorCode
from sessions_app.realtime.ratelimit import AbuseWindow, MessageRate, TokenBucket


def test_the_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # one token per 100 ms
    assert [bucket.take(10.0) for _ in range(6)] == [True] * 5 + [False]  # refilled, never above the burst


def test_abuse_is_counted_within_a_sliding_window() -> None:
    window = AbuseWindow(limit=3, window_s=1.0)
    assert not window.refuse(0.0) and not window.refuse(0.5)
    assert not window.refuse(1.6)  # the first two fell out of the window
    assert not window.refuse(1.7) and window.refuse(1.8)


def test_acknowledgements_have_a_budget_of_their_own(settings: Any) -> None:
    settings.WS_RATE_LIMIT_PER_S, settings.WS_RATE_LIMIT_BURST, settings.WS_ACK_RATE_PER_S = 1, 2, 100
    rate = MessageRate(now=0.0)

    assert [rate.refusal(0.0) for _ in range(3)] == [None, None, ErrorCode.RATE_LIMITED]
    # The messages' budget is spent; a hundred acknowledgements still pass, the next does not.
    assert all(rate.refusal(0.0, acknowledgement=True) is None for _ in range(100))
    assert rate.refusal(0.0, acknowledgement=True) == ErrorCode.RATE_LIMITED
