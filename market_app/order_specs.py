"""What an order ticket (or an amendment) means: its fields checked against its type, class and the
last price, each refusal a documented code. No database: market_app.services records the result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from market_app.errors import MarketCode
from market_app.messages import MAX_AMOUNT, OrderAmendment, OrderTicket
from market_app.models import OrderClass, OrderSide, OrderType, TimeInForce
from sessions_app.realtime.errors import ProtocolError

MAX_DECIMALS = 8


def to_decimal(value: float, code: MarketCode, field: str) -> Decimal:
    try:
        number = Decimal(repr(value))
    except InvalidOperation:
        raise ProtocolError(code, f"{field} is not a number") from None
    exponent = number.as_tuple().exponent  # an int exactly when the number is finite ('n', 'N', 'F' if not)
    # The upper bound keeps every amount inside the 24-digit columns (and the tick arithmetic exact).
    if not isinstance(exponent, int) or not 0 < number <= MAX_AMOUNT or -exponent > MAX_DECIMALS:
        raise ProtocolError(
            code, f"{field} must be positive, at most {MAX_AMOUNT:,}, with at most {MAX_DECIMALS} decimals"
        )
    return number


def on_grid(value: float, code: MarketCode, field: str, tick_size: Decimal, symbol: str) -> Decimal:
    price = to_decimal(value, code, field)
    if price % tick_size:
        raise ProtocolError(code, f"{field} must be a multiple of {symbol}'s tick size")
    return price


@dataclass(frozen=True)
class OrderSpec:
    """A checked order: every price a Decimal on the tick grid."""

    side: str
    order_type: str
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: str = TimeInForce.GTC
    order_class: str = OrderClass.SIMPLE
    stop_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None

    def cost_price(self, last: Decimal) -> Decimal:
        """The unit price a buy is costed (and its cash reserved) at."""
        if self.limit_price is not None:
            return self.limit_price
        if self.stop_price is not None:
            return max(self.stop_price, last)
        if self.trail_amount is not None:
            return last + self.trail_amount
        if self.trail_percent is not None:
            return last * (1 + self.trail_percent / 100)
        return last


class _Fields:
    def __init__(self, tick_size: Decimal, symbol: str) -> None:
        self.tick_size, self.symbol = tick_size, symbol

    def price(self, value: float | None, code: MarketCode, field: str) -> Decimal | None:
        return None if value is None else on_grid(value, code, field, self.tick_size, self.symbol)


def _check_shape(spec: OrderSpec) -> None:
    """The fields a type takes, and no others."""
    kind = spec.order_type
    takes_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    takes_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
    if takes_limit and spec.limit_price is None:
        raise ProtocolError(MarketCode.INVALID_PRICE, f"a {kind} order needs a limitPrice")
    if not takes_limit and spec.limit_price is not None:
        raise ProtocolError(MarketCode.INVALID_PRICE, f"a {kind} order takes no limitPrice")
    if takes_stop and spec.stop_price is None:
        raise ProtocolError(MarketCode.INVALID_STOP_PRICE, f"a {kind} order needs a stopPrice")
    if not takes_stop and spec.stop_price is not None:
        raise ProtocolError(MarketCode.INVALID_STOP_PRICE, f"a {kind} order takes no stopPrice")
    trails = (spec.trail_amount is not None) + (spec.trail_percent is not None)
    if kind == OrderType.TRAILING_STOP and trails != 1:
        raise ProtocolError(
            MarketCode.INVALID_TRAIL,
            "a trailing_stop needs exactly one of trailAmount and trailPercent" + (", not both" if trails == 2 else ""),
        )
    if kind != OrderType.TRAILING_STOP and trails:
        raise ProtocolError(MarketCode.INVALID_TRAIL, f"a {kind} order takes no trailAmount or trailPercent")


def _check_stop_side(side: str, stop: Decimal, last: Decimal | None) -> None:
    if last is None:
        return
    if side == OrderSide.BUY and stop <= last:
        raise ProtocolError(MarketCode.INVALID_STOP_PRICE, f"a buy stop must be above the last price {last}")
    if side == OrderSide.SELL and stop >= last:
        raise ProtocolError(MarketCode.INVALID_STOP_PRICE, f"a sell stop must be below the last price {last}")


def _check_exits(spec: OrderSpec, reference: Decimal | None) -> None:
    """A bracket's (or OCO's) take-profit and stop-loss on either side of the reference price."""
    take, stop = spec.take_profit_price, spec.stop_loss_price
    if take is None or stop is None:
        raise ProtocolError(MarketCode.INVALID_BRACKET, f"a {spec.order_class} order needs takeProfit and stopLoss")
    # A bracket's exits sell what a buy entry bought (and the reverse); an OCO's legs are its own side.
    exit_side = spec.side if spec.order_class == OrderClass.OCO else _opposite(spec.side)
    if exit_side == OrderSide.SELL:
        ok = take > stop and (reference is None or take > reference > stop)
        wanted = "takeProfit above and stopLoss below"
    else:
        ok = take < stop and (reference is None or take < reference < stop)
        wanted = "takeProfit below and stopLoss above"
    if not ok:
        raise ProtocolError(MarketCode.INVALID_BRACKET, f"the exits must bracket {reference}: {wanted}")
    limit = spec.stop_loss_limit_price
    if limit is not None and (limit > stop if exit_side == OrderSide.SELL else limit < stop):
        raise ProtocolError(
            MarketCode.INVALID_BRACKET, "a stop-loss's limitPrice must not be better than its stopPrice"
        )


def _opposite(side: str) -> str:
    return OrderSide.SELL if side == OrderSide.BUY else OrderSide.BUY


def spec_of_ticket(ticket: OrderTicket, *, tick_size: Decimal, symbol: str, last: Decimal | None) -> OrderSpec:
    fields = _Fields(tick_size, symbol)
    order_class = ticket.orderClass or OrderClass.SIMPLE
    spec = OrderSpec(
        side=ticket.side,
        order_type=ticket.orderType,
        quantity=to_decimal(ticket.quantity, MarketCode.INVALID_QUANTITY, "quantity"),
        limit_price=fields.price(ticket.limitPrice, MarketCode.INVALID_PRICE, "limitPrice"),
        time_in_force=ticket.timeInForce or TimeInForce.GTC,
        order_class=order_class,
        stop_price=fields.price(ticket.stopPrice, MarketCode.INVALID_STOP_PRICE, "stopPrice"),
        trail_amount=fields.price(ticket.trailAmount, MarketCode.INVALID_TRAIL, "trailAmount"),
        trail_percent=None if ticket.trailPercent is None else Decimal(repr(ticket.trailPercent)),
        take_profit_price=fields.price(
            ticket.takeProfit.limitPrice if ticket.takeProfit else None, MarketCode.INVALID_BRACKET, "takeProfit"
        ),
        stop_loss_price=fields.price(
            ticket.stopLoss.stopPrice if ticket.stopLoss else None, MarketCode.INVALID_BRACKET, "stopLoss.stopPrice"
        ),
        stop_loss_limit_price=fields.price(
            ticket.stopLoss.limitPrice if ticket.stopLoss else None, MarketCode.INVALID_BRACKET, "stopLoss.limitPrice"
        ),
    )
    _check_shape(spec)
    if spec.stop_price is not None:
        _check_stop_side(spec.side, spec.stop_price, last)
    simple = spec.order_class == OrderClass.SIMPLE
    if spec.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) and (
        not simple or spec.order_type not in (OrderType.MARKET, OrderType.LIMIT)
    ):
        raise ProtocolError(
            MarketCode.INVALID_TIME_IN_FORCE, f"{spec.time_in_force} is for simple market and limit orders"
        )
    if simple:
        if ticket.takeProfit is not None or ticket.stopLoss is not None:
            raise ProtocolError(MarketCode.INVALID_BRACKET, "a simple order takes no takeProfit or stopLoss")
    elif spec.order_class == OrderClass.BRACKET:
        if spec.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise ProtocolError(MarketCode.INVALID_BRACKET, "a bracket's entry is a market or limit order")
        _check_exits(spec, spec.limit_price if spec.limit_price is not None else last)
    else:  # an OCO pair: this limit order and a stop-loss, on the same side
        if spec.order_type != OrderType.LIMIT:
            raise ProtocolError(MarketCode.INVALID_BRACKET, "an oco order is a limit leg with a stopLoss")
        if ticket.takeProfit is not None:
            raise ProtocolError(MarketCode.INVALID_BRACKET, "an oco's take-profit is its limitPrice")
        spec = replace(spec, take_profit_price=spec.limit_price)
        _check_exits(spec, last)
        if spec.stop_loss_price is not None:
            _check_stop_side(spec.side, spec.stop_loss_price, last)
    return spec


@dataclass(frozen=True)
class Amendment:
    quantity: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_amount: Decimal | None
    trail_percent: Decimal | None


def amendment_of(amend: OrderAmendment, *, tick_size: Decimal, symbol: str) -> Amendment:
    fields = _Fields(tick_size, symbol)
    result = Amendment(
        quantity=None
        if amend.quantity is None
        else to_decimal(amend.quantity, MarketCode.INVALID_QUANTITY, "quantity"),
        limit_price=fields.price(amend.limitPrice, MarketCode.INVALID_PRICE, "limitPrice"),
        stop_price=fields.price(amend.stopPrice, MarketCode.INVALID_STOP_PRICE, "stopPrice"),
        trail_amount=fields.price(amend.trailAmount, MarketCode.INVALID_TRAIL, "trailAmount"),
        trail_percent=None if amend.trailPercent is None else Decimal(repr(amend.trailPercent)),
    )
    if all(value is None for value in vars(result).values()):
        raise ProtocolError(MarketCode.ORDER_NOT_REPLACEABLE, "a replace needs a new quantity or price")
    return result


def amended(spec: OrderSpec, change: Amendment, *, last: Decimal | None, triggered: bool) -> OrderSpec:
    """The order after the amendment, checked like a new ticket of its type and class."""
    if triggered and change.stop_price is not None:
        raise ProtocolError(MarketCode.ORDER_NOT_REPLACEABLE, "the stop already triggered")
    if change.trail_amount is not None and change.trail_percent is not None:
        raise ProtocolError(MarketCode.INVALID_TRAIL, "a trailing_stop takes trailAmount or trailPercent, not both")
    trail_amount, trail_percent = spec.trail_amount, spec.trail_percent
    if change.trail_amount is not None:
        trail_amount, trail_percent = change.trail_amount, None
    if change.trail_percent is not None:
        trail_amount, trail_percent = None, change.trail_percent
    new = replace(
        spec,
        quantity=change.quantity if change.quantity is not None else spec.quantity,
        limit_price=change.limit_price if change.limit_price is not None else spec.limit_price,
        stop_price=change.stop_price if change.stop_price is not None else spec.stop_price,
        trail_amount=trail_amount,
        trail_percent=trail_percent,
    )
    _check_shape(new)
    if change.stop_price is not None:
        _check_stop_side(new.side, change.stop_price, last)
    if new.order_class == OrderClass.BRACKET and new.take_profit_price is not None and new.limit_price is not None:
        _check_exits(new, new.limit_price)  # an entry's exits must still bracket it (an exit has none)
    return new
