"""The apps' error codes and metrics are collected by the kernel: every code of every app's enum
is registered with its spec, in catalogue order, and every metric is declared once (the generated
docs/protocol/metrics.md lists them; the protocol export's test keeps it current)."""

from __future__ import annotations

from enum import StrEnum

from market_app.errors import AccountCode, DatasetCode, MarketCode, ReportCode
from sessions_app.errors import HttpCode, SessionCode
from sessions_app.realtime import metrics
from sessions_app.realtime.errors import _CODES, CodeKind, ErrorCode, error_codes
from simulator_app.errors import SimulatorCode


def test_every_code_of_every_app_is_registered_once() -> None:
    enums: list[type[StrEnum]] = [
        ErrorCode,
        SessionCode,
        HttpCode,
        SimulatorCode,
        MarketCode,
        AccountCode,
        DatasetCode,
        ReportCode,
    ]
    declared = [member.value for enum in enums for member in enum]

    assert sorted(declared) == sorted(code.value for code, _ in error_codes())
    assert len(declared) == len(set(declared))


def test_the_catalogue_lists_codes_by_kind_then_by_registration() -> None:
    kinds = [_CODES[code.value][2] for code, _ in error_codes()]

    assert kinds == sorted(kinds)
    assert kinds[0] == CodeKind.FRAME and kinds[-1] == CodeKind.HTTP


def test_the_metrics_catalogue_names_each_metric_once() -> None:
    names = [entry.name for entry in metrics.CATALOGUE]

    assert len(names) == len(set(names))
    assert {"session_connections_open", "market_orders_total", "simulators"} <= set(names)
