"""Metrics of the account's history (declared through the kernel, so the docs list them)."""

from __future__ import annotations

from sessions_app.realtime import metrics

EQUITY_SAMPLES = metrics.counter("market_equity_samples_total", "Equity samples the workers wrote.")
ACCOUNT_RESETS = metrics.counter(
    "market_account_resets_total", "Paper accounts reset, by `user` or `operator`.", ["by"]
)
