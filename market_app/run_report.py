"""A replay run's report (docs/replay.md, "The report"): its equity bar by bar, the figures a strategy is
judged by (market_app.figures), its round trips, and a buy-and-hold benchmark over the same bars.

Built from what the run left (its dataset's bars up to the bar its clock reached, the fills of its
orders with the market time they traded at, the cash the account had when it started), so it reads
the same while the replay plays, after it stopped, and run again: a deterministic replay gives an
identical report.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from market_app import datasets, figures
from market_app.errors import ReportCode
from market_app.http_messages import MonthlyReturn, ReportFigures, ReportSeries, RunReport, RunTrade
from market_app.models import Fill
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from simulator_app.messages import MarketView
from simulator_app.models import Simulator


@dataclass
class _Book:
    """The run's cash and positions, fill by fill."""

    cash: float
    positions: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    traded: float = 0.0  # notional bought and sold
    fees: float = 0.0


@dataclass
class _RoundTrip:
    symbol: str
    opened_ms: int
    quantity: float = 0.0  # the position now
    pnl: float = 0.0  # cash in and out of it, fees included


def _simulator(user_id: int, simulator_id: uuid.UUID) -> Simulator:
    simulator = Simulator.objects.filter(pk=simulator_id, user_id=user_id).first()
    if simulator is None:
        raise ProtocolError(ReportCode.UNKNOWN_SIMULATOR)
    if simulator.market.get("source") != "replay":
        raise ProtocolError(
            ReportCode.REPORT_UNAVAILABLE,
            f"simulator {simulator_id} trades on the {simulator.market_source} market: a report needs a replay",
        )
    return simulator


def run_report(*, user_id: int, simulator_id: uuid.UUID, benchmark: str | None = None) -> RunReport:
    """The report of one of the user's replay simulators (any status), against buy-and-hold of
    `benchmark` (a symbol of its dataset; default: its first symbol)."""
    simulator = _simulator(user_id, simulator_id)
    market = simulator.market
    dataset_id = int(market["datasetId"])
    symbols: list[str] = list(market["symbols"])
    benchmark = benchmark or symbols[0]
    known = {entry["symbol"] for entry in datasets.dataset_symbols(dataset_id=dataset_id)}
    if benchmark not in known:
        raise ProtocolError(
            ReportCode.UNKNOWN_BENCHMARK,
            f"the dataset has no {benchmark}",
            details=[ErrorDetail(field="benchmark", problem=f"one of {', '.join(sorted(known))}")],
        )
    rows = datasets.dataset_bars_in_range(
        dataset_id=dataset_id, symbols=sorted({*symbols, benchmark}), start_ms=market["start"], end_ms=market["end"]
    )
    position = int(simulator.state.get("clock", {}).get("position", -1))
    closes: dict[int, dict[str, float]] = {}
    for at_ms, symbol, _open, _high, _low, close, _volume in rows:
        closes.setdefault(at_ms, {})[symbol] = float(close)
    # The run's own timeline (its symbols' bar times), up to the bar its clock reached.
    times = [t for t in sorted(closes) if any(s in closes[t] for s in symbols)][: position + 1]
    fills = list(
        Fill.objects.filter(order__simulator_id=simulator.pk)
        .select_related("instrument")
        .order_by("market_at", "created_at", "id")
    )
    return _report(simulator, times, closes, fills, benchmark)


def _report(
    simulator: Simulator, times: list[int], closes: dict[int, dict[str, float]], fills: list[Fill], benchmark: str
) -> RunReport:
    capital = float(simulator.market.get("capital", 0)) or 100_000.0
    book = _Book(cash=capital)
    last: dict[str, float] = {}
    equity: list[float] = []
    bench: list[float | None] = []
    exposed = 0
    trips: dict[str, _RoundTrip] = {}
    closed: list[RunTrade] = []
    pending = iter(fills)
    fill = next(pending, None)
    for at in times:
        last.update(closes[at])
        while fill is not None and _ms(fill) <= at:
            _apply(book, trips, closed, fill, _ms(fill))
            fill = next(pending, None)
        value = book.cash + sum(q * last.get(s, 0.0) for s, q in book.positions.items())
        equity.append(value)
        exposed += any(q != 0 for q in book.positions.values())
        bench.append(last.get(benchmark))
    end_ms = times[-1] if times else 0
    for trip in trips.values():  # a position still open is closed at the last price, for the figures
        if trip.quantity:
            trip.pnl += trip.quantity * last.get(trip.symbol, 0.0)
            closed.append(_trade(trip, end_ms, still_open=True))
    return _assemble(simulator, times, equity, bench, capital, book, closed, exposed, benchmark)


def _ms(fill: Fill) -> int:
    moment = fill.market_at or fill.created_at
    return int(moment.timestamp() * 1000)


def _apply(book: _Book, trips: dict[str, _RoundTrip], closed: list[RunTrade], fill: Fill, at: int) -> None:
    symbol = fill.instrument.symbol
    quantity, price, fee = float(fill.quantity), float(fill.price), float(fill.fee)
    signed = quantity if fill.side == "buy" else -quantity
    book.cash -= signed * price + fee
    book.positions[symbol] += signed
    book.traded += quantity * price
    book.fees += fee
    trip = trips.get(symbol)
    if trip is None or trip.quantity == 0:
        trip = trips[symbol] = _RoundTrip(symbol, at)
    trip.quantity += signed
    trip.pnl -= signed * price + fee
    if abs(trip.quantity) < 1e-12:
        trip.quantity = 0.0
        closed.append(_trade(trip, at, still_open=False))


def _trade(trip: _RoundTrip, closed_ms: int, *, still_open: bool) -> RunTrade:
    return RunTrade(symbol=trip.symbol, openedAt=trip.opened_ms, closedAt=closed_ms, pnl=trip.pnl, open=still_open)


def _monthly(times: list[int], equity: list[float], capital: float) -> list[MonthlyReturn]:
    months: dict[str, float] = {}
    for at, value in zip(times, equity, strict=True):
        months[datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m")] = value
    out, before = [], capital
    for month, value in months.items():
        out.append(MonthlyReturn(month=month, value=value / before - 1 if before else 0.0))
        before = value
    return out


def _assemble(
    simulator: Simulator,
    times: list[int],
    equity: list[float],
    bench: list[float | None],
    capital: float,
    book: _Book,
    trades: list[RunTrade],
    exposed: int,
    benchmark: str,
) -> RunReport:
    curve = [capital, *equity]
    returns = figures.returns_of(curve)
    periods = figures.periods_per_year(times)
    drawdown, deepest = figures.drawdowns(curve)
    first_bench = next((b for b in bench if b), None)
    bench_curve = [capital * (b / first_bench) if b and first_bench else capital for b in bench]
    bench_returns = figures.returns_of([capital, *bench_curve])
    alpha, beta = figures.alpha_beta(returns, bench_returns, periods)
    trade_figures = figures.trade_figures([t.pnl for t in trades])
    mean_equity = sum(curve) / len(curve)
    duration_ms = times[min(deepest.end, len(times)) - 1] - times[max(deepest.start - 1, 0)] if deepest.bars else 0
    report_figures = ReportFigures(
        startingCapital=capital,
        endingEquity=curve[-1],
        totalReturn=curve[-1] / capital - 1,
        cagr=figures.annual_return(returns, periods),
        volatility=figures.annual_volatility(returns, periods),
        sharpe=figures.sharpe_ratio(returns, periods),
        sortino=figures.sortino_ratio(returns, periods),
        calmar=figures.calmar_ratio(returns, periods, deepest.depth),
        maxDrawdown=deepest.depth,
        maxDrawdownBars=deepest.bars,
        maxDrawdownDurationMs=duration_ms,
        trades=trade_figures.trades,
        winRate=trade_figures.win_rate,
        profitFactor=trade_figures.profit_factor,
        expectancy=trade_figures.expectancy,
        averageWin=trade_figures.average_win,
        averageLoss=trade_figures.average_loss,
        exposure=exposed / len(times) if times else 0.0,
        turnover=book.traded / mean_equity if mean_equity else 0.0,
        fees=book.fees,
        benchmark=benchmark,
        benchmarkReturn=bench_curve[-1] / capital - 1 if bench_curve else 0.0,
        benchmarkCagr=figures.annual_return(bench_returns, periods),
        alpha=alpha,
        beta=beta,
        periodsPerYear=periods,
    )
    return RunReport(
        simulatorId=str(simulator.pk),
        market=MarketView.of(simulator.market),
        status=simulator.status,
        bars=len(times),
        start=times[0] if times else None,
        end=times[-1] if times else None,
        figures=report_figures,
        series=ReportSeries(times=times, equity=equity, benchmark=bench_curve, drawdown=drawdown[1:]),
        monthly=_monthly(times, equity, capital),
        trades=trades,
    )
