"""The first matcher, kept as a test oracle and a benchmark baseline: market and limit orders fill
at the tick's price, oldest first, bounded by the tick's volume. The live matcher
(market_app.matcher) must agree with it on the orders both understand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from market_app.accounting import FillIntent, OpenOrder
from market_app.prices import Quote


def match(orders: Sequence[OpenOrder], quotes: Mapping[str, Quote], tick_seq: int) -> list[FillIntent]:
    """Fill what this tick allows, oldest order first.

    Market orders fill at the tick's price; limit orders when the price reaches their limit, also at
    the tick's price (never worse than the limit). A tick's volume bounds what it fills in total, so a
    large order fills partially over several ticks.
    """
    available = {symbol: Decimal(quote.volume) for symbol, quote in quotes.items()}
    fills: list[FillIntent] = []
    for order in orders:
        quote = quotes.get(order.symbol)
        if quote is None or order.remaining <= 0 or not order.crosses(quote.price):
            continue
        quantity = min(order.remaining, available[order.symbol])
        if quantity <= 0:
            continue
        available[order.symbol] -= quantity
        fills.append(FillIntent(order_id=order.id, quantity=quantity, price=quote.price, tick_seq=tick_seq))
    return fills
