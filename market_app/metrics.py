"""The market app's metrics (declared through sessions_app.realtime.metrics, so the docs list them), and the
order counts read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from market_app.models import Order
from sessions_app.realtime import metrics

ORDERS = metrics.counter("market_orders_total", "Orders placed, by type and side.", ["order_type", "side"])
FILLS = metrics.counter("market_fills_total", "Fills applied, by side.", ["side"])
TICKS_SKIPPED_BY_RELAY = metrics.counter(
    "market_ticks_skipped_total",
    "Ticks a server process replaced by a newer one before relaying (its followers were busy; prices never fall"
    " behind).",
)
TICKS = metrics.counter("market_ticks_total", "Ticks the feed produced (in the producing process).")
TICK_DELIVERIES = metrics.counter(
    "market_tick_deliveries_total",
    "Ticks handed to connections, sent or conflated (merged: the client is past its flow-control window).",
    ["outcome"],
)


@metrics.gauge_at_scrape("market_orders", "Orders by status.", "status")
def orders_by_status() -> Iterable[tuple[str, int]]:
    return Order.objects.values_list("status").annotate(n=Count("pk"))


EQUITY_SAMPLES = metrics.counter(
    "market_equity_samples_total",
    "Equity samples the workers wrote (one per user whose simulator runs, every EQUITY_SAMPLE_INTERVAL_S).",
)
ACCOUNT_RESETS = metrics.counter(
    "market_account_resets_total", "Paper accounts reset, by `user` (REST or socket) or `operator` (admin).", ["by"]
)
MARGIN_CALLS = metrics.counter(
    "market_margin_calls_total", "Margin calls `issued`, and those `liquidated` (not met in time).", ["outcome"]
)
