"""The report's figures are empyrical's: each computed by market_app.figures equals the one of
empyrical-reloaded on the same returns (random walks of several lengths, spacings and seeds), and the
trade figures and bar spacing read as their definitions say."""

from __future__ import annotations

import math
import random
from types import ModuleType

import numpy as np
import pytest

from market_app import figures

DAY_MS = 86_400_000


def walk(seed: int, bars: int, drift: float = 0.0004, spread: float = 0.012) -> list[float]:
    rng = random.Random(seed)
    equity = [100_000.0]
    for _ in range(bars):
        equity.append(equity[-1] * (1 + rng.gauss(drift, spread)))
    return equity


@pytest.fixture(scope="module")
def empyrical() -> ModuleType:
    """Imported when a test here runs: at the module's top it brought in pandas and scipy (seconds
    of CPU, more on a clean clone compiling them) in every pytest-xdist worker collecting the suite."""
    import empyrical

    return empyrical


CASES = [(seed, bars) for seed in (1, 2, 3) for bars in (5, 60, 750)]


@pytest.mark.parametrize(("seed", "bars"), CASES)
def test_each_figure_equals_empyricals_on_the_same_returns(empyrical: ModuleType, seed: int, bars: int) -> None:
    equity = walk(seed, bars)
    returns = figures.returns_of(equity)
    benchmark = figures.returns_of(walk(seed + 100, bars, drift=0.0002))
    r, b, periods = np.array(returns), np.array(benchmark), 252.0
    _, drawdown = figures.drawdowns(equity)
    alpha, beta = figures.alpha_beta(returns, benchmark, periods)

    assert figures.sharpe_ratio(returns, periods) == pytest.approx(empyrical.sharpe_ratio(r, annualization=periods))
    assert figures.sortino_ratio(returns, periods) == pytest.approx(empyrical.sortino_ratio(r, annualization=periods))
    assert figures.annual_return(returns, periods) == pytest.approx(empyrical.annual_return(r, annualization=periods))
    assert figures.annual_volatility(returns, periods) == pytest.approx(
        empyrical.annual_volatility(r, annualization=periods)
    )
    assert drawdown.depth == pytest.approx(empyrical.max_drawdown(r))
    assert figures.calmar_ratio(returns, periods, drawdown.depth) == pytest.approx(
        empyrical.calmar_ratio(r, annualization=periods)
    )
    expected_alpha, expected_beta = empyrical.alpha_beta(r, b, annualization=periods)
    assert beta == pytest.approx(expected_beta)
    assert alpha == pytest.approx(expected_alpha)


def test_figures_that_cannot_be_computed_are_none_not_infinite() -> None:
    flat = [0.0] * 10

    assert figures.sharpe_ratio(flat, 252) is None
    assert figures.sortino_ratio(flat, 252) is None
    assert figures.calmar_ratio(flat, 252, 0.0) is None
    assert figures.alpha_beta([0.01, 0.02], [0.0, 0.0], 252) == (None, None)
    assert figures.sharpe_ratio([0.01], 252) is None


def test_the_longest_drawdown_runs_from_its_peak_to_its_recovery() -> None:
    series, drawdown = figures.drawdowns([100, 110, 99, 104, 111, 90, 95])

    assert drawdown.depth == pytest.approx(90 / 111 - 1)
    assert (drawdown.bars, drawdown.start, drawdown.end) == (3, 1, 4)  # 110 on bar 1, back above on bar 4
    assert series[2] == pytest.approx(99 / 110 - 1)


def test_a_drawdown_not_recovered_lasts_to_the_last_bar() -> None:
    _, drawdown = figures.drawdowns([100, 120, 80, 90, 95, 100, 101])

    assert (drawdown.bars, drawdown.start, drawdown.end) == (5, 1, 6)


def test_trade_figures_read_as_defined() -> None:
    trades = figures.trade_figures([100.0, -50.0, 30.0, -10.0])

    assert trades.trades == 4 and trades.win_rate == 0.5
    assert trades.profit_factor == pytest.approx(130 / 60)
    assert trades.expectancy == pytest.approx(17.5)
    assert (trades.average_win, trades.average_loss) == (65.0, -30.0)
    assert figures.trade_figures([]).win_rate is None


@pytest.mark.parametrize(
    ("gap_ms", "periods"),
    [(DAY_MS, 252.0), (7 * DAY_MS, 52.0), (30 * DAY_MS, 12.0), (60_000, 252 * 6.5 * 60), (1000, 252 * 6.5 * 3600)],
)
def test_a_year_holds_the_bars_of_its_spacing(gap_ms: int, periods: float) -> None:
    times = [i * gap_ms for i in range(20)]

    assert figures.periods_per_year(times) == pytest.approx(periods)


def test_weekends_do_not_change_a_daily_spacing() -> None:
    days = [d for d in range(40) if d % 7 not in (5, 6)]

    assert figures.periods_per_year([d * DAY_MS for d in days]) == 252.0


def test_a_gain_compounded_over_a_year_of_second_bars_has_no_annual_return_as_empyricals_is_infinite(
    empyrical: ModuleType,
) -> None:
    returns = [0.01] * 4
    periods = figures.TRADING_SECONDS_A_YEAR  # one-second bars
    assert figures.annual_return(returns, periods) is None
    assert figures.calmar_ratio(returns, periods, -0.01) is None
    with np.errstate(over="ignore"):
        assert math.isinf(empyrical.annual_return(np.array(returns), annualization=periods))
