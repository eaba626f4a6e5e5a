"""A margin account's requirements (docs/protocol.md §4f), as brokers under Regulation T count them:
pure functions of the cash, the signed positions at their prices and the open orders.

- equity = cash + the positions at their prices (a short counts below zero: its sale's proceeds are
  in the cash, its buying back is owed);
- the initial margin: what the positions and the open orders' opening parts (what would grow a
  position, not close it) hold, each at its value times the instrument's initial rate (default 50 %);
  an order is taken only while the equity covers it with the order's own;
- the maintenance margin: the longs' value times their maintenance rate (25 %) and the shorts' times
  theirs (30 %); the margin excess is the equity above it, below zero a margin call;
- the buying power: the equity the initial margin leaves free, over the default initial rate (with
  50 %: twice the free equity), the value of new positions an order may open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from market_app.accounting import quantize

ZERO = Decimal(0)


@dataclass(frozen=True)
class Rates:
    initial: Decimal
    maintenance_long: Decimal
    maintenance_short: Decimal


@dataclass(frozen=True)
class Holding:
    quantity: Decimal  # signed: below zero a short
    price: Decimal
    rates: Rates

    @property
    def maintenance(self) -> Decimal:
        """What it must keep: a long's value times its rate, a short's times the short rate."""
        value = self.quantity * self.price
        return value * self.rates.maintenance_long if value > 0 else -value * self.rates.maintenance_short


@dataclass(frozen=True)
class Opening:
    """An order's part that would open or grow a position, at the price it is valued at."""

    quantity: Decimal
    price: Decimal
    rates: Rates


@dataclass(frozen=True)
class Figures:
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    margin_excess: Decimal  # equity - maintenance margin: below zero, a margin call
    buying_power: Decimal


def opening_quantity(*, side: str, quantity: Decimal, held: Decimal) -> Decimal:
    """How much of an order would open or grow a position rather than close one (`held` signed)."""
    if side == "buy":
        return quantity - min(quantity, max(-held, ZERO))
    return quantity - min(quantity, max(held, ZERO))


def figures(
    *, cash: Decimal, holdings: Iterable[Holding], openings: Iterable[Opening], default_initial: Decimal
) -> Figures:
    equity = cash
    initial = maintenance = ZERO
    for holding in holdings:
        value = holding.quantity * holding.price
        equity += value
        initial += abs(value) * holding.rates.initial
        maintenance += holding.maintenance
    for opening in openings:
        initial += opening.quantity * opening.price * opening.rates.initial
    equity, initial, maintenance = quantize(equity), quantize(initial), quantize(maintenance)
    return Figures(
        equity=equity,
        initial_margin=initial,
        maintenance_margin=maintenance,
        margin_excess=equity - maintenance,
        buying_power=max(quantize((equity - initial) / default_initial), ZERO),
    )


def required(opening: Opening) -> Decimal:
    """The initial margin an order's opening part needs."""
    return quantize(opening.quantity * opening.price * opening.rates.initial)
