"""What the liquidity model costs on the tick path, in-process: books on against books off.

Usage: .venv/bin/python bench/market_books.py [--instruments 8] [--ticks 2000]

Per tick, "off" is what the feed did before the book: the wire quotes and one `exchange_data`
text for the default view. "on" is what the producer does now (every profile's book, the open
candles, the event's JSON texts) plus what a relay does for the default view (decode the tops, the
view's text); a view that asks for 10 levels and the candles of every symbol is timed apart, and
the same view with book deltas and trades (its book updates computed against the tick before). All run
in the same process, interleaved in rounds; the ratio to "off" is printed.
Not part of the test suite: figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from market_app.liquidity import DEFAULT_LIQUIDITY, LiquidityParams  # noqa: E402
from market_app.marketdata import MarketDataBuilder, SymbolLiquidity  # noqa: E402
from market_app.price_stream import TickView, encoder  # noqa: E402
from market_app.prices import InstrumentSpec, Quote, RandomWalkSource  # noqa: E402

SEEDED = {  # the eight seeded instruments' settings (migration 0005), for a representative mix
    "AAPL": ("0.01", "190.00", 1.0, "300", 1.10, 1, "1"),
    "MSFT": ("0.01", "420.00", 1.0, "200", 1.10, 1, "1"),
    "NVDA": ("0.01", "880.00", 1.5, "150", 1.10, 1, "1"),
    "AMZN": ("0.01", "180.00", 1.5, "300", 1.10, 1, "1"),
    "TSLA": ("0.01", "175.00", 2.0, "250", 1.15, 1, "1"),
    "SPY": ("0.01", "520.00", 0.5, "1000", 1.05, 1, "1"),
    "BTC-USD": ("0.01", "43000.00", 2.0, "0.5", 1.25, 100, "0.001"),
    "EUR-USD": ("0.0001", "1.0850", 0.5, "100000", 1.20, 1, "1000"),
}


def instruments(n: int) -> tuple[list[InstrumentSpec], dict[str, SymbolLiquidity]]:
    specs, liquidity = [], {}
    seeded = list(SEEDED.items())
    for i in range(n):
        base, (tick, price, spread, top, decay, gap, lot) = seeded[i % len(seeded)]
        symbol = base if i < len(seeded) else f"{base}{i}"
        specs.append(InstrumentSpec(symbol, Decimal(tick), Decimal(price), 0.3, 0.05, 1000))
        params = LiquidityParams(spread, DEFAULT_LIQUIDITY.depth_levels, Decimal(top), decay, gap, Decimal(lot))
        liquidity[symbol] = SymbolLiquidity(Decimal(tick), params)
    return specs, liquidity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instruments", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args()
    specs, liquidity = instruments(args.instruments)
    source = RandomWalkSource(specs, seed=1, tick_ms=500)
    quotes: dict[str, Quote] = source.first_tick()
    ticks = []
    for seq in range(1, args.ticks + 1):
        quotes = source.next_tick(seq, quotes)
        ticks.append(quotes)
    market = MarketDataBuilder(liquidity, seed=1)
    plain, deep = TickView(), TickView(depth=10, candles=("1s", "1m", "5m"))
    deltas = TickView(depth=10, candles=("1s", "1m", "5m"), book_deltas=True, trades=True)
    events: list[dict] = []
    seq_base = [10**9]

    def wire(seq: int, q: dict[str, Quote]) -> dict:
        return {
            "type": "market.tick",
            "seq": seq_base[0] + seq,
            "timestamp": seq * 500,
            "symbols": {s: quote.to_wire() for s, quote in q.items()},
        }

    def tick_off(seq: int, q: dict[str, Quote]) -> None:
        encoder.encode(wire(seq, q), plain)  # type: ignore[arg-type]

    def producer(seq: int, q: dict[str, Quote]) -> None:
        data = market.tick(seq=seq, timestamp=seq * 500, quotes=q)
        event = wire(seq, q)
        event.update(
            tops=data.tops_text(), books=data.books_text(), candles=data.candles_text(), prints=data.prints_text()
        )
        events.append(event)

    def relay(view: TickView):
        def run(seq: int, q: dict[str, Quote]) -> None:
            event = dict(events[seq - 1], seq=seq_base[0] + seq)
            encoder.encode(event, view)  # type: ignore[arg-type]

        return run

    rounds = 5
    per_round = len(ticks) // rounds
    steps = (
        ("off", tick_off),
        ("producer", producer),
        ("relay", relay(plain)),
        ("deep", relay(deep)),
        ("deltas", relay(deltas)),
    )
    timings: dict[str, list[float]] = {label: [] for label, _ in steps}
    for r in range(rounds):
        batch = list(enumerate(ticks[r * per_round : (r + 1) * per_round], start=r * per_round + 1))
        for label, run in steps:
            seq_base[0] += 10**6  # fresh seqs: the encoder caches per tick
            started = time.perf_counter()
            for seq, q in batch:
                run(seq, q)
            timings[label].append((time.perf_counter() - started) / len(batch) * 1e6)
    med = {label: statistics.median(values) for label, values in timings.items()}
    off, on = med["off"], med["producer"] + med["relay"]
    print(f"instruments: {args.instruments}, ticks: {args.ticks} in {rounds} interleaved rounds (medians)")
    print("| per tick | µs | ratio to books off |")
    print("| --- | --- | --- |")
    print(f"| books off: prices, one `exchange_data` text | {off:,.0f} | 1.00 |")
    print(f"| books on, producer: books of 3 profiles, candles, event texts | {med['producer']:,.0f} | |")
    print(f"| books on, relay: decode the tops, the default view's text | {med['relay']:,.0f} | |")
    print(f"| books on: producer + relay | {on:,.0f} | {on / off:.2f} |")
    print(f"| a relay's extra view with 10 levels and candles of every symbol | {med['deep']:,.0f} | |")
    print(f"| the same view with book deltas and trades | {med['deltas']:,.0f} | |")


if __name__ == "__main__":
    main()
