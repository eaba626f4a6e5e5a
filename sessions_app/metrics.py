"""Prometheus metrics of the service, declared once (README "Metrics" lists them).

With PROMETHEUS_MULTIPROC_DIR set (production: several daphne and worker processes on a
host), every process writes its samples there and /metrics adds them up; without it, the
one process's own registry is served. Counts that live in the database (simulators and
orders by status) are read at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from sessions_app.dispatch import ROUTES

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

CONNECTIONS_OPEN = Gauge("session_connections_open", "WebSocket connections open now.", multiprocess_mode="livesum")
CONNECTS = Counter(
    "session_connects_total", "WebSocket handshakes, by outcome (accepted, or the error code).", ["outcome"]
)
DISCONNECTS = Counter("session_disconnects_total", "Closed WebSocket connections, by close code.", ["code"])
MESSAGES_IN = Counter("session_messages_in_total", "Client messages received, by type.", ["type"])
MESSAGES_OUT = Counter("session_messages_out_total", "Server messages sent, by type.", ["type"])
ERRORS = Counter("session_errors_total", "`error` messages sent, by code.", ["code"])
HEARTBEAT_RTT = Histogram(
    "session_heartbeat_rtt_seconds",
    "Heartbeat round trips as clients measured them (`heartbeat.rttMs`).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CHANNEL_LAYER_FAILURES = Counter(
    "channel_layer_send_failures_total", "Channel-layer sends that failed, by kind (group, channel, full).", ["kind"]
)
STREAM_APPEND_FAILURES = Counter(
    "session_stream_append_failures_total", "Pushes that could not be numbered (stream store unreachable)."
)
STREAM_REPLAYED = Counter("session_stream_replayed_total", "Pushes sent again from the stream buffer.")
STREAM_RESYNCS = Counter(
    "session_stream_resyncs_total", "Clients resynchronised with a fresh snapshot, by reason.", ["reason"]
)
ORDERS = Counter("market_orders_total", "Orders placed, by type and side.", ["order_type", "side"])
FILLS = Counter("market_fills_total", "Fills applied, by side.", ["side"])
TICKS_SKIPPED_BY_RELAY = Counter(
    "market_ticks_skipped_total",
    "Ticks a server process replaced by a newer one before relaying (its followers were busy).",
)
TICKS = Counter("market_ticks_total", "Ticks the feed produced (in the producing process).")
TICK_DELIVERIES = Counter(
    "market_tick_deliveries_total", "Ticks handed to connections, sent or conflated.", ["outcome"]
)
CONNECTION_LIMIT_FAILURES = Counter(
    "session_connection_limit_failures_total",
    "Connection-limit operations that failed open (Redis unreachable), by operation.",
    ["operation"],
)


_in_children: dict[str, Counter] = {}
_out_children: dict[str, Counter] = {}


def count_in(kind: object) -> None:
    """One client message received (label children cached: this runs for every heartbeat)."""
    label = message_type_label(kind)
    child = _in_children.get(label)
    if child is None:
        child = _in_children[label] = MESSAGES_IN.labels(label)
    child.inc()


def count_out(kind: str) -> None:
    child = _out_children.get(kind)
    if child is None:
        child = _out_children[kind] = MESSAGES_OUT.labels(kind)
    child.inc()


def message_type_label(kind: object) -> str:
    """The type as a label when it is a client message type; anything else is "unknown" (bounded labels)."""
    return kind if isinstance(kind, str) and kind in ROUTES else "unknown"


class DatabaseCounts(Collector):
    """Simulators and orders by status, counted when Prometheus scrapes."""

    def collect(self) -> Iterable[Metric]:
        from django.db.models import Count

        from market_app.models import Order
        from simulator_app.models import Simulator

        simulators = GaugeMetricFamily("simulators", "Simulators by status.", labels=["status"])
        for status, count in Simulator.objects.values_list("status").annotate(n=Count("pk")):
            simulators.add_metric([status], count)
        orders = GaugeMetricFamily("market_orders", "Orders by status.", labels=["status"])
        for status, count in Order.objects.values_list("status").annotate(n=Count("pk")):
            orders.add_metric([status], count)
        yield simulators
        yield orders


def render() -> bytes:
    """The exposition text for /metrics."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    registry.register(DatabaseCounts())
    return generate_latest(registry)


class _ProcessRegistry(Collector):
    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


def process_exiting() -> None:
    """Drop this process's live gauges from the shared directory (multiprocess mode)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())
