"""The figures a strategy is judged by, from its equity curve and its round trips: pure Python, no models.

Each figure is the one of empyrical (empyrical-reloaded), the library Quantopian's pyfolio and zipline
report with, computed the same way (tests/market_app/test_report_figures.py checks them against it on
the same returns): simple returns per bar, no risk-free rate, annualised with the bars a year holds
(`periods_per_year`). empyrical itself is kept out of the service: it brings numpy, pandas and scipy
for a few sums.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, median, stdev

TRADING_DAYS = 252
TRADING_SECONDS_A_YEAR = TRADING_DAYS * 6.5 * 3600
DAY_S = 86_400


def periods_per_year(times_ms: Sequence[int]) -> float:
    """How many bars of this spacing a year holds: 252 daily bars, 52 weekly, 12 monthly; bars under a
    day apart count trading time only (6.5 hours a day, 252 days)."""
    gaps = [b - a for a, b in itertools.pairwise(times_ms) if b > a]
    if not gaps:
        return float(TRADING_DAYS)
    gap_s = median(gaps) / 1000
    if gap_s >= 28 * DAY_S:
        return 12.0
    if gap_s >= 7 * DAY_S:
        return 52.0
    if gap_s >= DAY_S:
        return float(TRADING_DAYS)
    return TRADING_SECONDS_A_YEAR / gap_s


def returns_of(equity: Sequence[float]) -> list[float]:
    """Simple returns from one equity value to the next."""
    return [b / a - 1 if a else 0.0 for a, b in itertools.pairwise(equity)]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def sharpe_ratio(returns: Sequence[float], periods: float) -> float | None:
    if len(returns) < 2:
        return None
    spread = stdev(returns)
    return _finite(fmean(returns) / spread * math.sqrt(periods)) if spread > 0 else None


def downside_risk(returns: Sequence[float], periods: float) -> float | None:
    if not returns:
        return None
    return math.sqrt(fmean(min(r, 0.0) ** 2 for r in returns)) * math.sqrt(periods)


def sortino_ratio(returns: Sequence[float], periods: float) -> float | None:
    risk = downside_risk(returns, periods)
    if len(returns) < 2 or not risk:
        return None
    return _finite(fmean(returns) * periods / risk)


def annual_return(returns: Sequence[float], periods: float) -> float | None:
    """The compound annual growth rate (CAGR)."""
    if not returns:
        return None
    final = math.prod(1 + r for r in returns)
    if final <= 0:
        return -1.0
    try:
        return _finite(final ** (periods / len(returns)) - 1)
    except OverflowError:  # a gain compounded over a year of second bars: past any float, as inf is
        return None


def annual_volatility(returns: Sequence[float], periods: float) -> float | None:
    return stdev(returns) * math.sqrt(periods) if len(returns) >= 2 else None


@dataclass(frozen=True)
class Drawdown:
    depth: float  # the largest fall from a peak, as a fraction (0 .. -1)
    bars: int  # how many bars the longest drawdown lasted (peak to recovery, or to the end)
    start: int  # index (into the equity curve) of that drawdown's peak
    end: int  # index where it recovered (or the last)


def drawdowns(equity: Sequence[float]) -> tuple[list[float], Drawdown]:
    """Each bar's drawdown from the running peak, and the deepest and longest of them."""
    series: list[float] = []
    peak, peak_at, deepest = -math.inf, 0, 0.0
    longest = (0, 0, 0)
    for index, value in enumerate(equity):
        if value >= peak:
            if index - peak_at > longest[0] and series and min(series[peak_at:]) < 0:
                longest = (index - peak_at, peak_at, index)
            peak, peak_at = value, index
        depth = value / peak - 1 if peak > 0 else 0.0
        series.append(depth)
        deepest = min(deepest, depth)
    last = len(equity) - 1
    if equity and series[-1] < 0 and last - peak_at > longest[0]:
        longest = (last - peak_at, peak_at, last)
    return series, Drawdown(deepest, longest[0], longest[1], longest[2])


def calmar_ratio(returns: Sequence[float], periods: float, max_drawdown: float) -> float | None:
    growth = annual_return(returns, periods)
    if growth is None or max_drawdown >= 0:
        return None
    return _finite(growth / abs(max_drawdown))


def alpha_beta(
    returns: Sequence[float], benchmark: Sequence[float], periods: float
) -> tuple[float | None, float | None]:
    """Jensen's alpha (annualised) and beta against the benchmark's returns of the same bars."""
    if len(returns) < 2 or len(benchmark) != len(returns):
        return None, None
    mean_b, mean_r = fmean(benchmark), fmean(returns)
    variance = fmean((b - mean_b) ** 2 for b in benchmark)
    if variance == 0:
        return None, None
    beta = fmean((r - mean_r) * (b - mean_b) for r, b in zip(returns, benchmark, strict=True)) / variance
    alpha = (1 + fmean(r - beta * b for r, b in zip(returns, benchmark, strict=True))) ** periods - 1
    return _finite(alpha), _finite(beta)


@dataclass(frozen=True)
class TradeFigures:
    trades: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    average_win: float | None
    average_loss: float | None


def trade_figures(pnls: Sequence[float]) -> TradeFigures:
    """From each round trip's profit or loss (after fees): how often and how much it won."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_loss = -sum(losses)
    return TradeFigures(
        trades=len(pnls),
        win_rate=len(wins) / len(pnls) if pnls else None,
        profit_factor=sum(wins) / gross_loss if gross_loss > 0 else None,
        expectancy=fmean(pnls) if pnls else None,
        average_win=fmean(wins) if wins else None,
        average_loss=fmean(losses) if losses else None,
    )
