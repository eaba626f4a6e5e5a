"""Reads of the market app, and the views of an account the messages and the REST API show."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from market_app.liquidity import DEFAULT_LIQUIDITY, LiquidityParams
from market_app.models import OPEN_ORDER_STATUSES, Account, Fill, Instrument, MarketFeed, Order, OrderSide, Position
from market_app.prices import Quote

RECENT_CLOSED_ORDERS = 50


def active_instruments() -> list[Instrument]:
    return list(Instrument.objects.filter(is_active=True))


def instrument_by_symbol(symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol, is_active=True).first()


@dataclass(frozen=True)
class FeedSnapshot:
    seq: int
    quotes: dict[str, Quote]


def feed_snapshot() -> FeedSnapshot:
    """The last tick the feed persisted (prices of every instrument)."""
    row = MarketFeed.objects.filter(pk=1).values_list("seq", "quotes").first()
    if row is None:
        return FeedSnapshot(0, {})
    return FeedSnapshot(row[0], {symbol: Quote.from_state(state) for symbol, state in row[1].items()})


@dataclass(frozen=True)
class BookSetting:
    """What the liquidity model needs of a symbol to build its book."""

    tick_size: Decimal
    params: LiquidityParams


DEFAULT_TICK_SIZE = Decimal("0.01")


def book_settings() -> tuple[int, dict[str, BookSetting]]:
    """The feed's seed and each listed symbol's book settings (a replayed symbol not listed gets defaults)."""
    seed = MarketFeed.objects.filter(pk=1).values_list("seed", flat=True).first() or 0
    settings = {
        instrument.symbol: BookSetting(instrument.tick_size, liquidity_params_of(instrument))
        for instrument in Instrument.objects.filter(is_active=True)
    }
    return seed, settings


def liquidity_params_of(instrument: Instrument) -> LiquidityParams:
    """The instrument's liquidity settings (the defaults until it has its own)."""
    return DEFAULT_LIQUIDITY


def orders_of_user(user_id: int) -> QuerySet[Order]:
    return Order.objects.filter(user_id=user_id).select_related("instrument")


def open_orders_of_users(user_ids: list[int]) -> QuerySet[Order]:
    return (
        Order.objects.filter(user_id__in=user_ids, status__in=OPEN_ORDER_STATUSES)
        .select_related("instrument")
        .order_by("created_at")
    )


def orders_shown(user_id: int) -> list[Order]:
    """What a snapshot lists: every open order, and the most recent closed ones."""
    open_orders = list(orders_of_user(user_id).filter(status__in=OPEN_ORDER_STATUSES))
    closed = list(orders_of_user(user_id).exclude(status__in=OPEN_ORDER_STATUSES)[:RECENT_CLOSED_ORDERS])
    return open_orders + closed


def positions_of_user(user_id: int) -> list[Position]:
    return list(Position.objects.filter(user_id=user_id).select_related("instrument"))


def fills_of_user(user_id: int) -> QuerySet[Fill]:
    return Fill.objects.filter(user_id=user_id).select_related("instrument")


def account_of_user(user_id: int) -> Account | None:
    return Account.objects.filter(user_id=user_id).first()


def reserved_by_open_orders(user_id: int, quotes: dict[str, Quote]) -> tuple[Decimal, dict[str, Decimal]]:
    """Cash held back by open buys (at their limit, stop, or the last price) and quantity held by open
    sells. The legs of an OCO group hold what their largest leg holds: only one of them can fill."""
    cash = Decimal(0)
    quantity: dict[str, Decimal] = {}
    groups: dict[object, tuple[str, Decimal]] = {}
    for order in open_orders_of_users([user_id]):
        symbol = order.instrument.symbol
        if order.side == OrderSide.BUY:
            last = quotes[symbol].price if symbol in quotes else order.instrument.start_price
            cash += order.remaining * (order.limit_price or (max(order.stop_price, last) if order.stop_price else last))
        elif order.oco_group is not None:
            held = groups.get(order.oco_group, (symbol, Decimal(0)))[1]
            groups[order.oco_group] = (symbol, max(held, order.remaining))
        else:
            quantity[symbol] = quantity.get(symbol, Decimal(0)) + order.remaining
    for symbol, held in groups.values():
        quantity[symbol] = quantity.get(symbol, Decimal(0)) + held
    return cash, quantity
