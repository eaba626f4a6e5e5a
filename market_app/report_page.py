"""A replay run's report as one self-contained HTML page: the figures, equity against the benchmark,
the drawdown and the monthly returns, drawn as inline SVG (no script, no CDN, nothing to fetch)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.template.loader import render_to_string

from market_app.http_messages import RunReport

WIDTH, HEIGHT, PAD = 860, 240, 6


def _points(values: Sequence[float], low: float, high: float) -> str:
    """An SVG polyline's points for `values` spread over the chart's width between `low` and `high`."""
    if not values:
        return ""
    span = high - low or 1.0
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    return " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD):.1f}" for i, v in enumerate(values)
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _day(ms: int | None) -> str:
    return "n/a" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def report_html(report: RunReport) -> str:
    series, f = report.series, report.figures
    both = [*series.equity, *series.benchmark] or [0.0]
    low, high = min(both), max(both)
    deepest = min(series.drawdown, default=0.0)
    figures = [
        ("Total return", _percent(f.totalReturn)),
        ("CAGR", _percent(f.cagr)),
        ("Volatility (annual)", _percent(f.volatility)),
        ("Sharpe", _number(f.sharpe)),
        ("Sortino", _number(f.sortino)),
        ("Calmar", _number(f.calmar)),
        ("Max drawdown", _percent(f.maxDrawdown)),
        ("Longest drawdown", f"{f.maxDrawdownBars} bars ({f.maxDrawdownDurationMs / 86_400_000:.1f} days)"),
        ("Trades", str(f.trades)),
        ("Win rate", _percent(f.winRate)),
        ("Profit factor", _number(f.profitFactor)),
        ("Expectancy", _number(f.expectancy)),
        ("Average win / loss", f"{_number(f.averageWin)} / {_number(f.averageLoss)}"),
        ("Exposure", _percent(f.exposure)),
        ("Turnover", _number(f.turnover)),
        ("Fees", _number(f.fees)),
        (f"Benchmark {f.benchmark} (buy and hold)", f"{_percent(f.benchmarkReturn)}, CAGR {_percent(f.benchmarkCagr)}"),
        ("Alpha / beta", f"{_percent(f.alpha)} / {_number(f.beta)}"),
        ("Capital → equity", f"{_number(f.startingCapital)} → {_number(f.endingEquity)}"),
    ]
    context = {
        "report": report,
        "figures": figures,
        "width": WIDTH,
        "height": HEIGHT,
        "equity": _points(series.equity, low, high),
        "benchmark": _points(series.benchmark, low, high),
        "drawdown": _points(series.drawdown, deepest, 0.0),
        "low": _number(low),
        "high": _number(high),
        "deepest": _percent(deepest),
        "start": _day(report.start),
        "end": _day(report.end),
        "monthly": [(m.month, _percent(m.value), m.value >= 0) for m in report.monthly],
    }
    return render_to_string("market/report.html", context)
