"""What books as deltas would weigh with a different book model (issue 27's bandwidth goals): an
offline simulation, no server. The seeded feed's eight instruments tick for `--ticks` ticks; each
tick's full books (the service's model, `wire_books_of_tick`, depth 20) are compared with the
updates of a *resting* book, one that keeps each level's size from tick to tick:

- levels on a grid `spacing` ticks apart: the instrument's gap, or with `--spacing-by-move K` the
  price's standard deviation per tick divided by K (so a tick moves the touch about K levels);
- each tick the levels the price crossed leave, new ones at the touch and at the far end arrive
  with fresh sizes (the service's mean size by distance from the touch, lognormal noise), and a
  fraction `--churn` of the others (three times that at the touch) get a fresh size;
- an update lists the levels that changed (`market_app.book_deltas.book_delta`), with its action,
  versions and checksum, as `exchange_data.books` carries it.

Prints the books' bytes only (not the quotes around them): updates against full books, in JSON and
in MessagePack. Not the service's model: a way to see what changing it would buy.

Usage: .venv/bin/python bench/book_models_wire.py [--time-scale 60] [--tick-ms 500] [--ticks 2000]
       [--churn 0.02] [--spacing-by-move 0]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from market_app.book_deltas import book_checksum, book_delta
from market_app.liquidity import BookInput, LiquidityParams, WireBook, wire_books_of_tick
from market_app.prices import InstrumentSpec, RandomWalkSource

DEPTH = 20
SEED = 7
# The seeded instruments, as the migrations that seed them declare them: (symbol, name, tick, start
# price, volatility, drift, volume per tick) and symbol -> (spread bps, levels, top size, decay,
# gap in ticks, lot).
INSTRUMENTS = import_module("market_app.migrations.0002_default_instruments").DEFAULT_INSTRUMENTS
LIQUIDITY = import_module("market_app.migrations.0005_default_instrument_liquidity").LIQUIDITY


class RestingBook:
    """One symbol's book whose levels keep their sizes until the price crosses them or churn redraws them."""

    def __init__(self, symbol: str, params: LiquidityParams, tick: Decimal, spacing: int, churn: float) -> None:
        self.params, self.tick, self.spacing, self.churn = params, tick, spacing, churn
        self.rng = random.Random(f"{SEED}:{symbol}")
        self.bids: dict[int, int] = {}  # grid index -> lots
        self.asks: dict[int, int] = {}

    def _size(self, k: int) -> int:
        mean = float(self.params.top_size / self.params.lot_size) * self.params.depth_decay**k
        return max(1, round(mean * math.exp(0.35 * self.rng.gauss(0, 1) - 0.35**2 / 2)))

    def _side(self, levels: dict[int, int], top: int, outward: int) -> dict[int, int]:
        kept: dict[int, int] = {}
        for k in range(DEPTH):
            index = top - outward * k
            redraw = index not in levels or self.rng.random() < self.churn * (3 if k == 0 else 1)
            kept[index] = self._size(k) if redraw else levels[index]
        return kept

    def step(self, price: Decimal) -> WireBook:
        ticks = float(price / self.tick)
        half = max(1, round(float(price) * self.params.spread_bps / 10_000 / float(self.tick))) / 2
        bid_top = math.floor((ticks - half) / self.spacing)
        ask_top = max(bid_top + 1, math.ceil((ticks + half) / self.spacing))
        self.bids = self._side(self.bids, bid_top, 1)
        self.asks = self._side(self.asks, ask_top, -1)
        step, lot = float(self.tick) * self.spacing, float(self.params.lot_size)
        return {
            "bids": [[round(i * step, 10), n * lot] for i, n in sorted(self.bids.items(), reverse=True)],
            "asks": [[round(i * step, 10), n * lot] for i, n in sorted(self.asks.items())],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--tick-ms", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--churn", type=float, default=0.02)
    parser.add_argument("--spacing-by-move", type=float, default=0.0, help="0: the instrument's own gap")
    args = parser.parse_args()

    specs = [
        InstrumentSpec(symbol, Decimal(tick), Decimal(price), volatility, drift, volume)
        for symbol, _, tick, price, volatility, drift, volume in INSTRUMENTS
    ]
    feed = RandomWalkSource(specs, seed=SEED, tick_ms=args.tick_ms, time_scale=args.time_scale)
    ticks = {spec.symbol: spec.tick_size for spec in specs}
    params = {
        symbol: LiquidityParams(
            spread_bps=spread, depth_levels=DEPTH, top_size=Decimal(top), depth_decay=decay,
            level_gap_ticks=gap, lot_size=Decimal(lot),
        )
        for symbol, (spread, _, top, decay, gap, lot) in LIQUIDITY.items()
    }  # fmt: skip
    books: dict[str, RestingBook] = {}
    for spec in specs:
        gap = params[spec.symbol].level_gap_ticks
        # The price's deviation per tick, in ticks.
        move = spec.volatility * math.sqrt(feed.dt) * float(spec.start_price) / float(spec.tick_size)
        spacing = max(gap, round(move / args.spacing_by_move)) if args.spacing_by_move else gap
        books[spec.symbol] = RestingBook(spec.symbol, params[spec.symbol], spec.tick_size, spacing, args.churn)

    quotes = feed.first_tick()
    held: dict[str, WireBook] = {}
    full_json = update_json = update_packed = 0
    for seq in range(1, args.ticks + 1):
        quotes = feed.next_tick(seq, quotes)
        inputs = {s: BookInput(q.price, q.volume, ticks[s], params[s]) for s, q in quotes.items()}
        full = wire_books_of_tick(inputs, seed=SEED, seq=seq, profiles=("realistic",))["realistic"]
        updates = {}
        for symbol, quote in quotes.items():
            book = books[symbol].step(quote.price)
            if symbol in held:
                delta = book_delta(held[symbol], book)
                if delta["bids"] or delta["asks"]:
                    change = {"action": "update", "seq": seq, "prevSeq": seq - 1, **delta}
                    updates[symbol] = change | {"checksum": book_checksum(book)}
            held[symbol] = book
        if seq > 1:  # the first tick is every book's snapshot
            full_json += len(json.dumps(full, separators=(",", ":")))
            update_json += len(json.dumps(updates, separators=(",", ":")))
            update_packed += len(msgpack.packb(updates))
    print(
        f"time scale {args.time_scale:g}x, a tick every {args.tick_ms} ms, {args.ticks} ticks, churn {args.churn}, "
        f"spacing {'by the move / ' + str(args.spacing_by_move) if args.spacing_by_move else 'the instruments gaps'}"
    )
    print(f"full books (JSON): {full_json / (args.ticks - 1):,.0f} bytes a tick")
    print(
        f"resting book updates: JSON {update_json / full_json:.3f}, MessagePack {update_packed / full_json:.3f} of that"
    )


if __name__ == "__main__":
    main()
