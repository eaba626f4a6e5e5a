"""The commission model: an account's schedule, scaled by its simulator's realism profile. Pure.

A schedule has a per-share (per-unit) rate with a minimum per order, and a rate in basis points of
the notional; either part may be zero. An order's commission after some fills is

    factor * (max(per_share * filled, minimum) + notional * bps / 10_000)

(the minimum only once something filled), and each fill is charged the growth of that total, so an
order filling over several ticks pays the minimum once, as at a broker charging per order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from market_app.accounting import quantize

ZERO = Decimal(0)


@dataclass(frozen=True)
class CommissionSchedule:
    per_share: Decimal = ZERO
    minimum: Decimal = ZERO
    bps: Decimal = ZERO

    @property
    def is_free(self) -> bool:
        return not (self.per_share or self.minimum or self.bps)


FREE = CommissionSchedule()


def order_commission(schedule: CommissionSchedule, *, filled: Decimal, notional: Decimal, factor: float) -> Decimal:
    """The commission of an order that has filled `filled` for `notional` in total."""
    if filled <= 0 or schedule.is_free or factor == 0:
        return ZERO
    per_share = max(schedule.per_share * filled, schedule.minimum)
    return quantize(Decimal(repr(factor)) * (per_share + notional * schedule.bps / 10_000))


def fill_fee(
    schedule: CommissionSchedule,
    *,
    filled_before: Decimal,
    notional_before: Decimal,
    quantity: Decimal,
    price: Decimal,
    factor: float,
) -> Decimal:
    """What one more fill of `quantity` at `price` costs: the growth of the order's commission."""
    before = order_commission(schedule, filled=filled_before, notional=notional_before, factor=factor)
    after = order_commission(
        schedule, filled=filled_before + quantity, notional=notional_before + quantity * price, factor=factor
    )
    return max(after - before, ZERO)
