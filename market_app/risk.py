"""An account's risk limits: what an order must stay within to be accepted (docs/protocol.md §4c).

Pure Python, no models: market_app.services gives it the account's figures at the prices the order
is checked against. Each limit is empty (none) unless the account's user sets it; an operator's cap
(the RISK_*_CAP settings) applies on top, so an order is held to the lower of the two.

- `max_order_value`: the order's value, its quantity at the price a buy is costed at (its limit,
  stop or the last price; a sell's the same way);
- `max_position_value`: for a buy, the symbol's position at the last price, its open buys and this
  order together;
- `max_open_orders`: the open orders an account may have (a new order needs one to spare);
- `max_leverage`: for a buy, every position at its last price, the open buys and this order,
  over the equity (cash and positions). A sell only lowers these, so only its value is checked;
- `daily_loss_limit`: how far the equity may fall in one market day below its start (the shared
  feed's first sample of the day; in a market of the simulator's own, the previous bar's close);
  past it the open orders are canceled and new ones refused until the next day
  (market_app.services.daily_losses_watch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TypeVar

from market_app.errors import MarketCode
from sessions_app.realtime.errors import ProtocolError

N = TypeVar("N", Decimal, int)


@dataclass(frozen=True)
class Limits:
    max_order_value: Decimal | None = None
    max_position_value: Decimal | None = None
    max_open_orders: int | None = None
    max_leverage: Decimal | None = None
    daily_loss_limit: Decimal | None = None

    def under(self, caps: Limits) -> Limits:
        """Each limit held to the cap's (a limit or a cap that is empty leaves the other)."""
        return Limits(**{f.name: _lower(getattr(self, f.name), getattr(caps, f.name)) for f in fields(self)})

    def above(self, caps: Limits) -> list[str]:
        """The names of the limits set above their caps."""
        names = []
        for f in fields(self):
            mine, cap = getattr(self, f.name), getattr(caps, f.name)
            if mine is not None and cap is not None and mine > cap:
                names.append(f.name)
        return names

    @property
    def none(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


NAMES = tuple(f.name for f in fields(Limits))  # the model's and the account's field names alike


def _lower(mine: N | None, cap: N | None) -> N | None:
    if mine is None:
        return cap
    return mine if cap is None else min(mine, cap)


@dataclass(frozen=True)
class Exposure:
    """What an account holds and has asked for, at the order's prices."""

    equity: Decimal  # cash and every position at its last price
    positions_value: Decimal  # every position at its last price
    open_buys_value: Decimal  # what the open buys are costed at
    symbol_value: Decimal  # the order's symbol: its position at the last price and its open buys
    open_orders: int


def check_order(limits: Limits, *, value: Decimal, buys: Decimal, new: bool, exposure: Exposure) -> None:
    """Refuse an order (or a replace) beyond `limits`. `value`: the order's whole value; `buys`: what it
    adds to the positions (a buy's value, a margin account's new short; 0 for a sell that only lowers a
    long); `new`: a new order (a replace keeps its place). Positions count by their size, shorts too."""
    if limits.max_order_value is not None and value > limits.max_order_value:
        raise ProtocolError(
            MarketCode.ORDER_VALUE_LIMIT, f"the order is worth {value}; the limit is {limits.max_order_value}"
        )
    if new and limits.max_open_orders is not None and exposure.open_orders >= limits.max_open_orders:
        raise ProtocolError(
            MarketCode.OPEN_ORDERS_LIMIT,
            f"{exposure.open_orders} orders are open; the limit is {limits.max_open_orders}",
        )
    if buys <= 0:
        return
    if limits.max_position_value is not None and exposure.symbol_value + buys > limits.max_position_value:
        raise ProtocolError(
            MarketCode.POSITION_VALUE_LIMIT,
            f"the symbol's position and open buys would be worth {exposure.symbol_value + buys}; "
            f"the limit is {limits.max_position_value}",
        )
    if limits.max_leverage is not None:
        exposed = exposure.positions_value + exposure.open_buys_value + buys
        if exposure.equity <= 0 or exposed > limits.max_leverage * exposure.equity:
            leverage = "unbounded" if exposure.equity <= 0 else f"{exposed / exposure.equity:.4f}"
            raise ProtocolError(
                MarketCode.LEVERAGE_LIMIT, f"the leverage would be {leverage}; the limit is {limits.max_leverage}"
            )


def loss_reached(limit: Decimal | None, *, start: Decimal | None, equity: Decimal) -> bool:
    """Whether the equity has fallen `limit` or more below the day's `start`."""
    return limit is not None and start is not None and start - equity >= limit
