"""The orders the matcher works on and the accounting of a fill. Pure functions: the worker's
matcher (market_app.matcher) decides the fills, market_app.services persists what they change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from market_app.models import OrderSide, OrderType

EIGHT_PLACES = Decimal("0.00000001")


def quantize(value: Decimal) -> Decimal:
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class OpenOrder:
    id: uuid.UUID
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    filled_qty: Decimal
    limit_price: Decimal | None
    # What market_app.matcher needs beyond market and limit orders (the defaults are a plain gtc order).
    time_in_force: str = "gtc"
    stop_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_anchor: Decimal | None = None
    triggered: bool = False
    queue_ahead: Decimal | None = None
    active_at_ms: int = 0
    expires_seq: int | None = None
    oco_group: uuid.UUID | None = None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_qty

    def crosses(self, price: Decimal) -> bool:
        if self.order_type == OrderType.MARKET:
            return True
        assert self.limit_price is not None
        return price <= self.limit_price if self.side == OrderSide.BUY else price >= self.limit_price


@dataclass(frozen=True)
class FillIntent:
    order_id: uuid.UUID
    quantity: Decimal
    price: Decimal
    tick_seq: int


@dataclass(frozen=True)
class PositionState:
    quantity: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True)
class FillEffect:
    position: PositionState
    cash_delta: Decimal


def apply_fill(
    position: PositionState,
    *,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal = Decimal(0),
    short: bool = False,
) -> FillEffect:
    """The position and cash after a fill. A position's quantity is signed: below zero a short.

    Long only unless `short` (a margin account): a sell never exceeds a long position. A fill first
    closes what it can of the position (realizing the difference to its average price: a long's
    price - average, a short's average - price), and the rest opens the other way at the fill's price.
    A sale's proceeds, a short's too, go to the cash; so cash + quantity x price stays the equity. The
    fee leaves the cash and counts against the realized profit when it is paid (buy or sell).
    """
    signed = quantity if side == OrderSide.BUY else -quantity
    if not short and position.quantity + signed < 0:
        raise ValueError(f"sell of {quantity} exceeds the position of {position.quantity}")
    notional = quantize(quantity * price)
    cash_delta = (-notional if side == OrderSide.BUY else notional) - fee
    held = position.quantity
    closing = min(quantity, abs(held)) if held * signed < 0 else Decimal(0)
    realized = position.realized_pnl - fee
    if closing:
        direction = 1 if held > 0 else -1  # a long gains when the price rose, a short when it fell
        realized += quantize((price - position.average_price) * closing * direction)
    new_quantity = held + signed
    if new_quantity == 0:
        average = Decimal(0)
    elif closing == 0:  # adding to the position (or opening one): the volume-weighted average
        average = quantize((abs(held) * position.average_price + notional) / abs(new_quantity))
    elif closing < quantity:  # closed it and opened the other way with the rest
        average = price
    else:  # closed part of it: the rest keeps its average
        average = position.average_price
    return FillEffect(PositionState(new_quantity, average, realized), cash_delta)


def order_average_price(filled: Decimal, average: Decimal | None, quantity: Decimal, price: Decimal) -> Decimal:
    """The order's volume-weighted fill price after one more fill."""
    previous = (average or Decimal(0)) * filled
    return quantize((previous + quantity * price) / (filled + quantity))
