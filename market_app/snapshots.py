"""What the client sees of the market and of an account: the views inside
`exchange_data_status`, `order_placed`, `order_canceled` and the REST API."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings

from market_app import margin, risk, selectors
from market_app.accounting import OpenOrder
from market_app.matcher import trailing_stop_price
from market_app.messages import (
    AccountSummary,
    ExchangeDataStatus,
    RiskLimits,
    RiskLimitsView,
    SnapshotReason,
    TradingAccount,
    UserOrder,
    UserPosition,
)
from market_app.models import Account, AccountType, Order, OrderType, Position
from market_app.order_versions import KeptByVersion, Read
from market_app.prices import Quote
from market_app.realism import profile_name
from sessions_app.realtime.message_base import epoch_ms, now_ms, optional_epoch_ms
from simulator_app.clock import Clock, ClockSettings
from simulator_app.messages import ClockView, MarketView
from simulator_app.selectors import live_simulator_of_user


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order_view(order: Order) -> UserOrder:
    trailing_stop = None
    if order.order_type == OrderType.TRAILING_STOP and order.trail_anchor is not None and not order.triggered:
        trailing_stop = float(trailing_stop_price(open_order_of_view(order), order.trail_anchor))
    return UserOrder(
        orderId=str(order.id),
        status=order.status,
        filledQty=float(order.filled_qty),
        symbol=order.instrument.symbol,
        side=order.side,
        orderType=order.order_type,
        quantity=float(order.quantity),
        limitPrice=None if order.limit_price is None else float(order.limit_price),
        averagePrice=None if order.average_price is None else float(order.average_price),
        clientOrderId=order.client_order_id or None,
        reason=order.reason,
        createdAt=epoch_ms(order.created_at),
        updatedAt=epoch_ms(order.updated_at),
        timeInForce=order.time_in_force,
        orderClass=order.order_class,
        stopPrice=_number(order.stop_price),
        trailAmount=_number(order.trail_amount),
        trailPercent=_number(order.trail_percent),
        trailingStopPrice=trailing_stop,
        triggered=order.triggered,
        queueAhead=_number(order.queue_ahead),
        takeProfitPrice=_number(order.take_profit_price),
        stopLossPrice=_number(order.stop_loss_price),
        stopLossLimitPrice=_number(order.stop_loss_limit_price),
        parentOrderId=None if order.parent_id is None else str(order.parent_id),
        ocoGroup=None if order.oco_group is None else str(order.oco_group),
        fee=float(order.fee),
        liquidation=order.liquidation,
    )


def open_order_of_view(order: Order) -> OpenOrder:
    """The few fields trailing_stop_price reads."""
    return OpenOrder(
        id=order.id,
        symbol="",
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        limit_price=None,
        trail_amount=order.trail_amount,
        trail_percent=order.trail_percent,
    )


def position_view(position: Position, quote: Quote | None) -> UserPosition:
    last = quote.price if quote is not None else position.average_price
    return UserPosition(
        symbol=position.instrument.symbol,
        quantity=float(position.quantity),
        value=float(position.quantity * last),
        averagePrice=float(position.average_price),
        lastPrice=float(last),
        realizedPnl=float(position.realized_pnl),
        unrealizedPnl=float((last - position.average_price) * position.quantity),
    )


def account_summary(
    account: Account | None, positions: list[UserPosition], reserved: Decimal, figures: margin.Figures | None = None
) -> AccountSummary:
    """The account's figures; a margin account's requirements in `figures` (market_app.margin)."""
    cash = account.cash if account is not None else Decimal(settings.MARKET_STARTING_CASH)
    starting = account.starting_cash if account is not None else cash
    value = sum((p.value for p in positions), 0.0)
    return AccountSummary(
        cash=float(cash),
        startingCash=float(starting),
        positionsValue=value,
        equity=float(cash) + value,
        reservedCash=float(reserved),
        feesPaid=float(account.fees_paid) if account is not None else 0.0,
        accountId=account.pk if account is not None else None,
        name=account.name if account is not None else None,
        accountType=account.account_type if account is not None else "cash",
        buyingPower=float(figures.buying_power) if figures is not None else float(max(cash - reserved, Decimal(0))),
        initialMargin=float(figures.initial_margin) if figures is not None else None,
        maintenanceMargin=float(figures.maintenance_margin) if figures is not None else None,
        marginExcess=float(figures.margin_excess) if figures is not None else None,
    )


def trading_account_view(account: Account) -> TradingAccount:
    return TradingAccount(
        accountId=account.pk,
        name=account.name,
        accountType=account.account_type,
        isDefault=account.is_default,
        isCurrent=account.is_current,
        startingCash=float(account.starting_cash),
        cash=float(account.cash),
        feesPaid=float(account.fees_paid),
        profile=account.profile or None,
        commissionPerShare=_number(account.commission_per_share),
        commissionMinimum=_number(account.commission_minimum),
        commissionBps=_number(account.commission_bps),
        createdAt=epoch_ms(account.created_at),
        closedAt=optional_epoch_ms(account.closed_at),
    )


# The views of orders by version (market_app.order_versions): a snapshot builds only those of orders
# written since the last one (building the 50 closed ones each time was a third of its cost).
VIEWS_KEPT = 10_000
_views: KeptByVersion[UserOrder] = KeptByVersion(VIEWS_KEPT)


def closed_order_views(account_id: int) -> list[UserOrder]:
    """The views of the account's most recent closed orders, newest first."""
    return _views.of(
        selectors.recent_closed_order_versions(account_id), lambda ids: _views_by_id(selectors.orders_to_show(ids))
    )


def order_views(orders: list[Order]) -> list[UserOrder]:
    """The views of orders already read, in their order."""
    by_id = {order.id: order for order in orders}
    versions = [(order.id, order.updated_at) for order in orders]
    return _views.of(versions, lambda ids: _views_by_id(by_id[i] for i in ids))


def _views_by_id(orders: Iterable[Order]) -> Read[UserOrder]:
    return {order.id: ((order.id, order.updated_at), order_view(order)) for order in orders}


def exchange_data_status(*, user_id: int, reason: SnapshotReason, request_id: str | None = None) -> ExchangeDataStatus:
    simulator = live_simulator_of_user(user_id=user_id)
    account = selectors.account_of_user(user_id)
    held = selectors.positions_of_account(account.pk) if account is not None else []
    open_orders = selectors.open_orders_of_users([user_id])
    if simulator is None or not simulator.own_market:
        feed = selectors.feed_snapshot()
        quotes, seq = feed.quotes, feed.seq
        symbols = selectors.feed_quotes(feed, profile_name(simulator.profile if simulator is not None else None))
        market = clock = None
    else:
        # A market of the simulator's own: its prices at the worker's last checkpoint (the next bar follows).
        own_quotes = selectors.own_market_quotes(simulator)
        quotes, seq = own_quotes, 0
        traded = {p.instrument.symbol for p in held} | {o.instrument.symbol for o in open_orders}
        if not traded <= own_quotes.keys():
            quotes = selectors.feed_snapshot().quotes | own_quotes  # the shared feed values the rest
        symbols = {symbol: quote.to_wire() for symbol, quote in own_quotes.items()}
        market = MarketView.of(simulator.market)
        clock = ClockView.of(Clock.resume(simulator.state.get("clock"), ClockSettings.from_state(simulator.clock)))
    # Closed positions stay listed (quantity 0) for their realized profit.
    positions = [position_view(p, quotes.get(p.instrument.symbol)) for p in held]
    reserved, _ = selectors.reserved_by_orders(open_orders, quotes)
    figures = None
    if account is not None and account.account_type == AccountType.MARGIN:
        figures = selectors.margin_figures(cash=account.cash, positions=held, open_orders=open_orders, quotes=quotes)
    closed = closed_order_views(account.pk) if account is not None else []
    shown = [*order_views(open_orders[::-1]), *closed]  # newest first
    return ExchangeDataStatus(
        timestamp=now_ms(),
        symbols=symbols,
        userOrders={view.orderId: view for view in shown},
        userPositions={p.symbol: p for p in positions},
        account=account_summary(account, positions, reserved, figures),
        seq=seq,
        reason=reason,
        requestId=request_id,
        profile=simulator.profile if simulator is not None else None,
        market=market,
        clock=clock,
    )


def risk_limits_view(account: Account | None) -> RiskLimitsView:
    """The limits the account's user set and the operator's caps."""
    limits = selectors.risk_limits_of(account) if account is not None else risk.Limits()
    return RiskLimitsView(limits=_limits_wire(limits), caps=_limits_wire(selectors.risk_caps()))


def _limits_wire(limits: risk.Limits) -> RiskLimits:
    return RiskLimits(
        maxOrderValue=_number(limits.max_order_value),
        maxPositionValue=_number(limits.max_position_value),
        maxOpenOrders=limits.max_open_orders,
        maxLeverage=_number(limits.max_leverage),
        dailyLossLimit=_number(limits.daily_loss_limit),
    )
