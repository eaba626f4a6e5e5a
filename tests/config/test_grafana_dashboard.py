"""The shipped Grafana dashboard (deploy/grafana) asks only for metrics the service exports."""

from __future__ import annotations

import json
import re

from tests.support.liveserver import ROOT


def test_the_grafana_dashboard_only_queries_metrics_the_service_exports() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "trading-simulator.json").read_text())
    exported = {
        "session_connections_open",
        "session_connects_total",
        "session_disconnects_total",
        "session_messages_in_total",
        "session_messages_out_total",
        "session_errors_total",
        "session_heartbeat_rtt_seconds_bucket",
        "channel_layer_send_failures_total",
        "simulators",
        "market_orders",
        "market_orders_total",
        "market_fills_total",
        "market_ticks_total",
        "market_tick_deliveries_total",
    }
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b([a-z_]+)(?:\{|\[|\))", target["expr"])
        if name.startswith(("session_", "channel_", "simulators", "market_"))
    }
    assert queried and queried <= exported
