"""What the liquidity model costs on the tick path, in-process: books on against books off.

Usage: .venv/bin/python bench/market_books.py [--instruments 8] [--ticks 2000]

Per tick, "off" is what the feed did before the book: the wire quotes and one `exchange_data`
text for the default view. "on" adds what the producer and a relay do now: every profile's book
(`MarketDataBuilder.tick`: draws, books, open candles), the event's JSON texts, decoding them once
in the relay, and the texts of two views (the default one with top of book; one with 10 levels and
the three candles). Both run in the same process, interleaved in rounds, and the ratio is printed.
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
from market_app.prices import InstrumentSpec, Quote, RandomWalkSource  # noqa: E402
from market_app.stream import TickView, encoder  # noqa: E402

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
    seq_base = [10**9]

    def tick_off(seq: int, q: dict[str, Quote]) -> None:
        event = {"type": "market.tick", "seq": seq_base[0] + seq, "timestamp": seq * 500, "symbols": {}}
        event["symbols"] = {s: quote.to_wire() for s, quote in q.items()}
        encoder.encode(event, plain)  # type: ignore[arg-type]

    def tick_on(seq: int, q: dict[str, Quote]) -> None:
        data = market.tick(seq=seq, timestamp=seq * 500, quotes=q)
        event = {
            "type": "market.tick",
            "seq": seq_base[0] + seq,
            "timestamp": seq * 500,
            "symbols": {s: quote.to_wire() for s, quote in q.items()},
            "books": data.books_text(),
            "candles": data.candles_text(),
        }
        encoder.encode(event, plain)  # type: ignore[arg-type]
        encoder.encode(event, deep)  # type: ignore[arg-type]

    rounds = 5
    per_round = len(ticks) // rounds
    timings: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):
        batch = list(enumerate(ticks[r * per_round : (r + 1) * per_round], start=r * per_round + 1))
        for label, run in (("off", tick_off), ("on", tick_on)):
            seq_base[0] += 10**6  # fresh seqs: the encoder caches per tick
            started = time.perf_counter()
            for seq, q in batch:
                run(seq, q)
            timings[label].append((time.perf_counter() - started) / len(batch) * 1e6)
    off, on = statistics.median(timings["off"]), statistics.median(timings["on"])
    print(f"instruments: {args.instruments}, ticks: {args.ticks} in {rounds} interleaved rounds (medians)")
    print("| books | µs per tick | per instrument | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| off (prices only) | {off:,.0f} | {off / args.instruments:,.1f} | 1.00 |")
    print(f"| on (3 profiles, candles, 2 views) | {on:,.0f} | {on / args.instruments:,.1f} | {on / off:.2f} |")


if __name__ == "__main__":
    main()
