"""What matching costs a worker per tick: N running simulators, each with open orders of every type on
every one of the eight instruments, matched with books on, against the 500 ms tick interval.

Usage: .venv/bin/python bench/matching.py [--simulators 1000] [--ticks 40] [--profile realistic]
       [--compare]

In process, no server and no database: it times what the market does in a worker with each tick
(market_app.in_worker.Markets.of_event reads the tick's books for each profile once, then
market_app.matcher.match_tick runs for every simulator) and, as the same-run baseline, the exchange
of before (tests/support/reference_matcher.py: market and limit orders at the tick's price). The ticks and
their books come from the feed's own producer code (market_app.marketdata) on a seeded random walk;
each simulator's orders move on with the fills between ticks as the service would record them.
Applying the fills in the database is not included (only ticks with fills write, one transaction per
simulator); their accounting is: each simulator's account takes its tick's fills and is valued, as a
cash account (long only: a sell up to the position, the equity) and, in the same run, as a margin
account (shorts: every sell, the requirements of market_app.margin over its positions and open
orders), printed as the matching's cost per simulator-tick with each and their ratio (issue 26's
goal: margin at most 20 % over cash). Writes bench/results/matching-*.json.

--compare also prints one seeded order flow under ideal, realistic and harsh: fill prices, slippage
against the tick's price, commissions (0.005 per share, at least 1 per order) and the final equity.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from bench.common import load_average, markdown_table, write_results  # noqa: E402
from market_app import margin  # noqa: E402
from market_app.accounting import FillIntent, OpenOrder, PositionState, apply_fill  # noqa: E402
from market_app.events import MarketTickEvent  # noqa: E402
from market_app.fees import CommissionSchedule, fill_fee  # noqa: E402
from market_app.in_worker import Markets  # noqa: E402
from market_app.liquidity import LiquidityParams  # noqa: E402
from market_app.marketdata import MarketDataBuilder, SymbolLiquidity, books_of_event  # noqa: E402
from market_app.matcher import TickOutcome, match_tick  # noqa: E402
from market_app.prices import InstrumentSpec, Quote, RandomWalkSource  # noqa: E402
from market_app.realism import PROFILES, ProfileName  # noqa: E402
from tests.support.reference_matcher import match  # noqa: E402

D = Decimal
TICK_INTERVAL_MS = 500
SEED = 7
# The eight seeded instruments, as the data migrations create them: price process and book.
_PRICES = importlib.import_module("market_app.migrations.0002_default_instruments").DEFAULT_INSTRUMENTS
_BOOKS = importlib.import_module("market_app.migrations.0005_default_instrument_liquidity").LIQUIDITY
INSTRUMENTS = {
    symbol: (tick, price, volatility, volume, _BOOKS[symbol])
    for symbol, _name, tick, price, volatility, _drift, volume in _PRICES
}


def specs() -> list[InstrumentSpec]:
    return [
        InstrumentSpec(symbol, D(tick), D(price), volatility=vol, drift=0.0, base_volume=volume)
        for symbol, (tick, price, vol, volume, _) in INSTRUMENTS.items()
    ]


def liquidity() -> dict[str, SymbolLiquidity]:
    out = {}
    for symbol, (tick, _, _, _, (spread, levels, top, decay, gap, lot)) in INSTRUMENTS.items():
        params = LiquidityParams(spread, levels, D(top), decay, gap, D(lot))
        out[symbol] = SymbolLiquidity(D(tick), params)
    return out


def ticks(count: int) -> list[tuple[MarketTickEvent, dict[str, Quote]]]:
    """`count` ticks as the producer publishes them (prices, every profile's books)."""
    source = RandomWalkSource(specs(), seed=SEED, tick_ms=TICK_INTERVAL_MS)
    builder = MarketDataBuilder(liquidity(), seed=SEED)
    quotes = source.first_tick()
    out = []
    for seq in range(1, count + 1):
        quotes = source.next_tick(seq, quotes)
        stamp = 1_000_000 + seq * TICK_INTERVAL_MS
        data = builder.tick(seq=seq, timestamp=stamp, quotes=quotes)
        event: MarketTickEvent = {
            "type": "market.tick",
            "seq": seq,
            "timestamp": stamp,
            "symbols": {symbol: quote.to_wire() for symbol, quote in quotes.items()},
            "books": data.books_text(),
        }
        out.append((event, dict(quotes)))
    return out


def orders_of(user: int, prices: dict[str, Decimal]) -> list[OpenOrder]:
    """One simulator's open orders: every type and time in force, on every instrument."""
    orders: list[OpenOrder] = []
    n = 0

    def add(symbol: str, side: str, kind: str, quantity: Decimal, **fields: Any) -> None:
        nonlocal n
        n += 1
        base: dict[str, Any] = {"limit_price": None, **fields}
        orders.append(OpenOrder(uuid.UUID(int=user * 1_000 + n), symbol, side, kind, quantity, D(0), **base))

    for symbol, (tick, _, _, _, book) in INSTRUMENTS.items():
        price, step = prices[symbol], D(tick)
        lot = D(book[5])
        add(symbol, "buy", "market", lot * 2)
        add(symbol, "buy", "limit", lot * 5, limit_price=price - step * 3)
        add(symbol, "sell", "limit", lot * 5, limit_price=price + step * 3)
        add(symbol, "buy", "stop", lot, stop_price=price + step * 5)
        add(symbol, "buy", "stop_limit", lot, stop_price=price + step * 5, limit_price=price + step * 8)
        add(symbol, "sell", "trailing_stop", lot, trail_amount=step * 10, trail_anchor=price)
        add(symbol, "buy", "limit", lot * 3, limit_price=price - step * 20, time_in_force="day", expires_seq=10**6)
        add(symbol, "buy", "limit", lot, limit_price=price + step, time_in_force="ioc")
        group = uuid.UUID(int=user * 1_000 + 900 + len(orders))
        add(symbol, "sell", "limit", lot, limit_price=price + step * 15, oco_group=group)
        add(symbol, "sell", "stop", lot, stop_price=price - step * 15, oco_group=group)
    return orders


def advance(orders: list[OpenOrder], outcome: TickOutcome) -> list[OpenOrder]:
    if not outcome:
        return orders
    filled = {fill.order_id: fill.quantity for fill in outcome.fills}
    changes = {change.order_id: change for change in outcome.changes}
    ended = {expiry.order_id for expiry in outcome.expiries}
    groups = {o.oco_group for o in orders if o.id in filled and o.oco_group is not None}
    after = []
    for order in orders:
        if order.id in ended or (order.oco_group in groups and order.id not in filled):
            continue
        change = changes.get(order.id)
        if change is not None:
            order = replace(
                order, trail_anchor=change.trail_anchor, triggered=change.triggered, queue_ahead=change.queue_ahead
            )
        if order.id in filled:
            order = replace(order, filled_qty=order.filled_qty + filled[order.id])
        if order.remaining > 0:
            after.append(order)
    return after


REG_T = margin.Rates(initial=D("0.5"), maintenance_long=D("0.25"), maintenance_short=D("0.3"))


class Book:
    """One simulator's account: cash and signed positions (average, realized) by symbol."""

    def __init__(self) -> None:
        self.cash = D(1_000_000)
        self.positions: dict[str, PositionState] = {}


def account_cash(
    account: Book, fills: list[FillIntent], symbols: dict[Any, str], sides: dict[Any, str], quotes: dict[str, Quote]
) -> Decimal:
    """A cash account takes its fills (a sell up to the position) and is valued: its equity."""
    for fill in fills:
        symbol, side = symbols[fill.order_id], sides[fill.order_id]
        held = account.positions.get(symbol, PositionState())
        quantity = fill.quantity if side == "buy" else min(fill.quantity, held.quantity)
        if quantity <= 0:
            continue
        effect = apply_fill(held, side=side, quantity=quantity, price=fill.price)
        account.positions[symbol], account.cash = effect.position, account.cash + effect.cash_delta
    return account.cash + sum((p.quantity * quotes[s].price for s, p in account.positions.items()), D(0))


def account_margin(
    account: Book,
    fills: list[FillIntent],
    symbols: dict[Any, str],
    sides: dict[Any, str],
    quotes: dict[str, Quote],
    open_orders: list[OpenOrder],
) -> margin.Figures:
    """A margin account takes its fills (shorts too) and is valued with its requirements."""
    for fill in fills:
        symbol = symbols[fill.order_id]
        held = account.positions.get(symbol, PositionState())
        effect = apply_fill(held, side=sides[fill.order_id], quantity=fill.quantity, price=fill.price, short=True)
        account.positions[symbol], account.cash = effect.position, account.cash + effect.cash_delta
    holdings = [margin.Holding(p.quantity, quotes[s].price, REG_T) for s, p in account.positions.items() if p.quantity]
    openings = [
        margin.Opening(
            margin.opening_quantity(
                side=o.side, quantity=o.remaining, held=account.positions.get(o.symbol, PositionState()).quantity
            ),
            o.limit_price or o.stop_price or quotes[o.symbol].price,
            REG_T,
        )
        for o in open_orders
    ]
    return margin.figures(cash=account.cash, holdings=holdings, openings=openings, default_initial=D("0.5"))


def measure(simulators: int, count: int, profile: str) -> dict[str, Any]:
    stream = ticks(count + 1)
    first = {symbol: quote.price for symbol, quote in stream[0][1].items()}
    books = {u: orders_of(u, first) for u in range(simulators)}
    baseline = {u: [o for o in orders if o.order_type in ("market", "limit")] for u, orders in books.items()}
    markets = Markets(SEED, liquidity())
    frictionless = PROFILES[ProfileName(profile)].frictionless
    new_ms, old_ms, fills, open_orders = [], [], 0, []
    cash_ms, margin_ms = [], []
    symbols = {o.id: o.symbol for orders in books.values() for o in orders}
    sides = {o.id: o.side for orders in books.values() for o in orders}
    cash_books = {u: Book() for u in books}
    margin_books = {u: Book() for u in books}
    for event, quotes in stream[1:]:
        open_orders.append(sum(len(o) for o in books.values()))
        started = time.perf_counter()
        by_symbol = markets.of_event(books_of_event(event), event["seq"], quotes, profile)
        outcomes = {
            u: match_tick(
                orders, by_symbol, tick_seq=event["seq"], tick_ms=event["timestamp"], frictionless=frictionless
            )
            for u, orders in books.items()
        }
        new_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        old = {u: match(orders, quotes, event["seq"]) for u, orders in baseline.items()}
        old_ms.append((time.perf_counter() - started) * 1000)
        fills += sum(len(o.fills) for o in outcomes.values())
        # The accounting of the tick's fills, cash then margin, each from the same fills.
        started = time.perf_counter()
        for u, outcome in outcomes.items():
            if outcome.fills:
                account_cash(cash_books[u], outcome.fills, symbols, sides, quotes)
        cash_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for u, outcome in outcomes.items():
            if outcome.fills:
                account_margin(margin_books[u], outcome.fills, symbols, sides, quotes, books[u])
        margin_ms.append((time.perf_counter() - started) * 1000)
        books = {u: advance(books[u], outcomes[u]) for u in books}
        baseline = {u: advance_old(baseline[u], old[u]) for u in baseline}
    with_cash = sorted(m + c for m, c in zip(new_ms, cash_ms, strict=True))
    with_margin = sorted(m + c for m, c in zip(new_ms, margin_ms, strict=True))
    new_ms.sort()
    old_ms.sort()

    def median(values: list[float]) -> float:
        return values[len(values) // 2]

    return {
        "simulators": simulators,
        "ticks": count,
        "profile": profile,
        "openOrdersPerTickMedian": sorted(open_orders)[len(open_orders) // 2],
        "openOrdersAtStart": open_orders[0],
        "fills": fills,
        "msPerTickMedian": round(median(new_ms), 2),
        "msPerTickP90": round(new_ms[int(len(new_ms) * 0.9)], 2),
        "baselineMsPerTickMedian": round(median(old_ms), 2),
        "usPerSimulator": round(median(new_ms) * 1000 / simulators, 1),
        "shareOfTickInterval": round(median(new_ms) / TICK_INTERVAL_MS, 3),
        "ratioToBaseline": round(median(new_ms) / max(median(old_ms), 1e-9), 2),
        "usPerSimulatorWithCashAccounts": round(median(with_cash) * 1000 / simulators, 1),
        "usPerSimulatorWithMarginAccounts": round(median(with_margin) * 1000 / simulators, 1),
        "marginOverCash": round(median(with_margin) / max(median(with_cash), 1e-9), 3),
        # Over the whole run: the ticks with many fills weigh in.
        "marginOverCashTotal": round(sum(with_margin) / max(sum(with_cash), 1e-9), 3),
        "accountingMsTotal": {"cash": round(sum(cash_ms), 1), "margin": round(sum(margin_ms), 1)},
    }


def advance_old(orders: list[OpenOrder], fills: list[FillIntent]) -> list[OpenOrder]:
    filled = {fill.order_id: fill.quantity for fill in fills}
    after = []
    for order in orders:
        if order.id in filled:
            order = replace(order, filled_qty=order.filled_qty + filled[order.id])
        if order.remaining > 0:
            after.append(order)
    return after


def compare(count: int = 120) -> list[list[Any]]:
    """One order flow on AAPL under each profile: what it paid, in slippage and fees, and where it ends."""
    schedule = CommissionSchedule(per_share=D("0.005"), minimum=D(1))
    rows = []
    stream = ticks(count)
    start = stream[0][1]["AAPL"].price
    for profile in ProfileName:
        realism = PROFILES[profile]
        markets = Markets(SEED, liquidity())
        orders = [
            OpenOrder(uuid.UUID(int=1), "AAPL", "buy", "market", D(2_000), D(0), None),
            OpenOrder(uuid.UUID(int=2), "AAPL", "sell", "limit", D(1_000), D(0), start + D("0.20")),
            OpenOrder(uuid.UUID(int=3), "AAPL", "sell", "stop", D(1_000), D(0), None, stop_price=start - D("0.30")),
        ]
        # Placed just before the first tick: each trades once the profile's entry latency has passed.
        arrival = stream[0][0]["timestamp"] - 1
        orders = [
            replace(order, active_at_ms=arrival + realism.latency_ms if realism.latency_ms else 0) for order in orders
        ]
        position, cash, fees, slippage, traded = PositionState(), D(1_000_000), D(0), D(0), D(0)
        filled: dict[uuid.UUID, tuple[Decimal, Decimal]] = {}
        sides = {o.id: o.side for o in orders}
        last = start
        for event, quotes in stream:
            last = quotes["AAPL"].price
            outcome = match_tick(
                orders,
                markets.of_event(books_of_event(event), event["seq"], quotes, profile.value),
                tick_seq=event["seq"],
                tick_ms=event["timestamp"],
                frictionless=realism.frictionless,
            )
            for fill in outcome.fills:
                side = sides[fill.order_id]
                if side == "sell":
                    quantity = min(fill.quantity, position.quantity)
                    if quantity <= 0:
                        continue
                    fill = replace(fill, quantity=quantity)
                done, notional = filled.get(fill.order_id, (D(0), D(0)))
                fee = fill_fee(
                    schedule,
                    filled_before=done,
                    notional_before=notional,
                    quantity=fill.quantity,
                    price=fill.price,
                    factor=realism.fee_factor,
                )
                filled[fill.order_id] = (done + fill.quantity, notional + fill.quantity * fill.price)
                effect = apply_fill(position, side=side, quantity=fill.quantity, price=fill.price, fee=fee)
                position, cash, fees = effect.position, cash + effect.cash_delta, fees + fee
                worse = fill.price - last if side == "buy" else last - fill.price
                slippage += worse * fill.quantity
                traded += fill.quantity
            orders = advance(orders, outcome)
        buy = filled.get(uuid.UUID(int=1), (D(0), D(0)))
        rows.append(
            [
                profile.value,
                f"{buy[1] / buy[0]:.4f}" if buy[0] else "-",
                f"{slippage:.2f}",
                f"{fees:.2f}",
                f"{cash + position.quantity * last:.2f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulators", type=int, default=1_000)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--profile", default="realistic", choices=[p.value for p in ProfileName])
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    load = load_average()
    result = measure(args.simulators, args.ticks, args.profile)
    result["loadAverage"] = [load, load_average()]
    print(
        markdown_table(
            [
                "simulators",
                "open orders",
                "ms/tick (median)",
                "p90",
                "µs/simulator",
                "of 500 ms",
                "old matcher ms",
                "ratio",
            ],
            [
                [
                    result["simulators"],
                    result["openOrdersAtStart"],
                    result["msPerTickMedian"],
                    result["msPerTickP90"],
                    result["usPerSimulator"],
                    f"{result['shareOfTickInterval']:.1%}",
                    result["baselineMsPerTickMedian"],
                    f"{result['ratioToBaseline']}x",
                ]
            ],
        )
    )
    print(
        markdown_table(
            ["matching and accounting", "µs/simulator-tick"],
            [
                ["cash accounts", result["usPerSimulatorWithCashAccounts"]],
                ["margin accounts", result["usPerSimulatorWithMarginAccounts"]],
                ["margin / cash (median tick)", f"{result['marginOverCash']}x (goal: at most 1.2x)"],
                ["margin / cash (whole run)", f"{result['marginOverCashTotal']}x"],
            ],
        )
    )
    print(f"load average {result['loadAverage']} on {os.cpu_count()} cores (a shared machine)")
    if args.compare:
        rows = compare()
        result["comparison"] = rows
        print(markdown_table(["profile", "market buy avg", "slippage", "fees", "final equity"], rows))
    print(write_results("matching", result))


if __name__ == "__main__":
    main()
