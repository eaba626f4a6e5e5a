"""The same feed seed, profile and orders give the same fills; profiles differ on the same seed.
The worker's own path (market_app.in_worker.Markets and market_app.matcher.match_tick) over a seeded feed."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

from market_app.accounting import FillIntent, OpenOrder
from market_app.in_worker import Markets
from market_app.liquidity import DEFAULT_LIQUIDITY
from market_app.marketdata import SymbolLiquidity
from market_app.matcher import match_tick
from market_app.prices import InstrumentSpec, Quote, RandomWalkSource
from market_app.realism import PROFILES

D = Decimal
SPEC = InstrumentSpec("AAPL", D("0.01"), D("100.00"), volatility=2.0, drift=0.0, base_volume=800)


def order_flow() -> list[OpenOrder]:
    def order(n: int, side: str, kind: str, quantity: int, **fields: object) -> OpenOrder:
        base: dict[str, object] = {"limit_price": None, **fields}
        return OpenOrder(uuid.UUID(int=n), "AAPL", side, kind, D(quantity), D(0), **base)  # type: ignore[arg-type]

    return [
        order(1, "buy", "market", 1_500),
        order(2, "buy", "limit", 300, limit_price=D("99.90")),
        order(3, "buy", "stop", 200, stop_price=D("100.20")),
        order(4, "sell", "trailing_stop", 100, trail_amount=D("0.15"), trail_anchor=D("100.00")),
        order(5, "buy", "limit", 400, limit_price=D("100.30"), time_in_force="ioc"),
        order(6, "buy", "market", 5_000, time_in_force="fok"),
        order(7, "buy", "stop_limit", 100, stop_price=D("100.10"), limit_price=D("100.15")),
    ]


def run(profile: str, seed: int, ticks: int = 60) -> list[FillIntent]:
    source = RandomWalkSource([SPEC], seed=seed, tick_ms=500)
    markets = Markets(seed, {"AAPL": SymbolLiquidity(SPEC.tick_size, DEFAULT_LIQUIDITY)})
    quotes: dict[str, Quote] = source.first_tick()
    orders, fills = order_flow(), []
    for seq in range(1, ticks + 1):
        quotes = source.next_tick(seq, quotes)
        outcome = match_tick(
            orders,
            markets.of_tick(quotes, seq, profile),
            tick_seq=seq,
            tick_ms=seq * 500,
            frictionless=PROFILES[profile].frictionless,  # type: ignore[index]
        )
        fills += outcome.fills
        filled = {fill.order_id: fill.quantity for fill in outcome.fills}
        changes = {change.order_id: change for change in outcome.changes}
        ended = {expiry.order_id for expiry in outcome.expiries}
        after = []
        for order in orders:
            if order.id in ended:
                continue
            if order.id in changes:
                c = changes[order.id]
                order = replace(order, trail_anchor=c.trail_anchor, triggered=c.triggered, queue_ahead=c.queue_ahead)
            order = replace(order, filled_qty=order.filled_qty + filled.get(order.id, D(0)))
            if order.remaining > 0:
                after.append(order)
        orders = after
    return fills


def test_the_same_seed_profile_and_orders_give_the_same_fills() -> None:
    for profile in ("ideal", "realistic", "harsh"):
        first = run(profile, seed=42)
        assert first and first == run(profile, seed=42)


def test_the_profiles_fill_the_same_order_flow_differently_on_the_same_seed() -> None:
    ideal, realistic, harsh = (run(profile, seed=42) for profile in ("ideal", "realistic", "harsh"))
    assert ideal != realistic != harsh

    def market_buy_price(fills: list[FillIntent]) -> Decimal:
        mine = [fill for fill in fills if fill.order_id == uuid.UUID(int=1)]
        return sum((f.price * f.quantity for f in mine), D(0)) / sum((f.quantity for f in mine), D(0))

    # The same market buy costs more the harsher the profile: spread and depth are slippage.
    assert market_buy_price(ideal) < market_buy_price(realistic) < market_buy_price(harsh)
