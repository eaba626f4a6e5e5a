"""Writes of the market app: accounts, placing and canceling orders, and applying fills.

Every fill changes the order, a fill record, the position and the cash in one
transaction, under a lock on the account. A fill names the tick it traded on and a
unique constraint allows one fill per order and tick, so a fill is never applied twice,
even when a worker that was killed mid-tick is replaced by one that replays it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_spec
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from market_app import margin, metrics, order_specs, risk, selectors
from market_app.accounting import (
    EIGHT_PLACES,
    FillIntent,
    OpenOrder,
    PositionState,
    apply_fill,
    order_average_price,
    quantize,
)
from market_app.candles import RETENTION_MS, ClosedBar
from market_app.errors import AccountCode, MarketCode
from market_app.events import MarketTickEvent, OrdersChangedCommand, OwnAckCommand
from market_app.fees import CommissionSchedule, fill_fee
from market_app.groups import ticks_group, worker_orders_group
from market_app.marketdata import TickMarketData
from market_app.matcher import Expiry, StateChange
from market_app.messages import MarginCallUpdate, MarginCallView, OrderAmendment, OrderTicket, RiskLimits
from market_app.models import (
    OPEN_ORDER_STATUSES,
    Account,
    AccountCharge,
    AccountReset,
    AccountType,
    Candle,
    ChargeKind,
    EquitySample,
    Fill,
    Instrument,
    MarginCall,
    MarginCallStatus,
    MarketFeed,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from market_app.order_specs import OrderSpec
from market_app.prices import Quote
from market_app.realism import Realism, realism_of
from market_app.snapshots import exchange_data_status
from sessions_app.groups import user_group
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.realtime.message_base import epoch_ms, now_ms, optional_epoch_ms
from sessions_app.realtime.publish import notify, notify_now, push
from sessions_app.rows import one_or_none
from sessions_app.selectors import active_session_ids_of_user
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator
from simulator_app.selectors import live_simulator_of_user, profile_of_held_simulator
from simulator_app.selectors import running_simulator_of_user as running_simulator

MAX_DECIMALS = order_specs.MAX_DECIMALS
MAX_AMOUNT = order_specs.MAX_AMOUNT


def account_for(user_id: int, *, lock: bool = False) -> Account:
    """The user's current account (models.Account), made on first use as their default one."""
    query = Account.objects.select_for_update() if lock else Account.objects
    account = one_or_none(query.filter(user_id=user_id, is_current=True))
    if account is None:
        cash = Decimal(settings.MARKET_STARTING_CASH)
        Account.objects.get_or_create(user_id=user_id, is_current=True, defaults={"cash": cash, "starting_cash": cash})
        account = query.get(user_id=user_id, is_current=True)
    return account


def account_to_change(*, user_id: int, account_id: int | None) -> Account:
    """The user's open account `account_id` (None: their current one), locked."""
    if account_id is None:
        return account_for(user_id, lock=True)
    account = one_or_none(Account.objects.select_for_update().filter(pk=account_id, user_id=user_id))
    if account is None:
        raise ProtocolError(AccountCode.UNKNOWN_ACCOUNT, f"you have no account {account_id}")
    if account.closed_at is not None:
        raise ProtocolError(AccountCode.ACCOUNT_CLOSED, f"account {account.name!r} is closed")
    return account


def commission_schedule_of(account: Account) -> CommissionSchedule:
    """The account's own schedule, each empty part taken from the MARKET_COMMISSION_* settings."""

    def part(value: Decimal | None, default: Decimal) -> Decimal:
        return default if value is None else value

    return CommissionSchedule(
        per_share=part(account.commission_per_share, settings.MARKET_COMMISSION_PER_SHARE),
        minimum=part(account.commission_minimum, settings.MARKET_COMMISSION_MINIMUM),
        bps=part(account.commission_bps, settings.MARKET_COMMISSION_BPS),
    )


def _require_running(simulator: Simulator | None) -> Simulator:
    if simulator is None:
        raise ProtocolError(
            SimulatorCode.SIMULATOR_NOT_RUNNING, "orders need a running simulator; send start_simulator"
        )
    return simulator


async def own_tick_send(*, user_id: int, event: dict[str, Any]) -> None:
    """A bar of the user's own market to the user's connections (market_app.own_market; unnumbered,
    like the shared feed's ticks: a connection that misses one gets the next)."""
    await notify_now(group=user_group(user_id), event=event)


async def own_ack_send(*, channel: str, simulator_id: str, seq: int, orders_changed: bool) -> None:
    """A client acknowledged a bar of its user's own market in lock-step: to the worker's market part
    playing it (`orders_changed`: the client placed, canceled or replaced orders since its last one)."""
    ack: OwnAckCommand = {
        "type": "market.own_ack",
        "simulatorId": simulator_id,
        "seq": seq,
        "ordersChanged": orders_changed,
    }
    await notify_now(channel=channel, event=ack)


def account_snapshot_push(user_id: int) -> None:
    """After commit, send the user's connections a fresh snapshot of their current account.

    Built once for all of the user's connections, and numbered in their session streams:
    order and position updates are never conflated, and are replayed on `reconnect`.
    """
    push(
        group=user_group(user_id),
        message=lambda: exchange_data_status(user_id=user_id, reason="orders_changed"),
        sessions=lambda: active_session_ids_of_user(user_id),
    )


def _orders_changed(user_id: int, simulator: Simulator | None) -> None:
    _hint_worker(user_id, simulator)
    account_snapshot_push(user_id)


def _hint_worker(user_id: int, simulator: Simulator | None) -> None:
    if simulator is not None and simulator.worker_id is not None:
        # A hint for the worker matching this user's orders (it also reloads them every lease renewal).
        command: OrdersChangedCommand = {"type": "market.orders_changed", "userId": user_id}
        notify(group=worker_orders_group(simulator.worker_id), event=command)


def _active_at(realism: Realism) -> int:
    """When an order (or its amendment) placed now takes effect: the profile's entry latency on."""
    return 0 if realism.latency_ms == 0 else now_ms() + realism.latency_ms


def _day_end(seq: int) -> int:
    """The first feed tick of the next simulated trading day (MARKET_DAY_TICKS ticks a day)."""
    return (seq // settings.MARKET_DAY_TICKS + 1) * settings.MARKET_DAY_TICKS


def _check_affordable(
    account: Account,
    spec: OrderSpec,
    instrument: Instrument,
    last: Decimal,
    quotes: dict[str, Quote],
    open_orders: list[Order],
) -> Decimal:
    """Refuse an order the account cannot pay for (a cash account) or cover (a margin account); returns
    how much of it would open or grow a short (a margin account's sell beyond its position)."""
    if account.account_type == AccountType.MARGIN:
        opening = _check_buying_power(
            account, spec.side, spec.quantity, spec.cost_price(last), instrument, quotes, open_orders
        )
        return opening if spec.side == OrderSide.SELL else Decimal(0)
    reserved_cash, reserved_quantity = selectors.reserved_by_orders(open_orders, quotes)
    if spec.side == "buy" and spec.order_class != OrderClass.OCO:
        cost = quantize(spec.quantity * spec.cost_price(last))
        available = account.cash - reserved_cash
        if cost > available:
            raise ProtocolError(
                MarketCode.INSUFFICIENT_CASH,
                f"the order needs about {cost} and {max(available, Decimal(0))} is available",
                details=[ErrorDetail(field="quantity", problem=f"at most {available} in cash is free")],
            )
    elif spec.side == "sell":
        position = one_or_none(Position.objects.filter(account=account, instrument=instrument))
        held = position.quantity if position is not None else Decimal(0)
        free = held - reserved_quantity.get(instrument.symbol, Decimal(0))
        if spec.quantity > free:
            raise ProtocolError(
                MarketCode.INSUFFICIENT_POSITION,
                f"{free} {instrument.symbol} can be sold, not {spec.quantity}",
                details=[ErrorDetail(field="quantity", problem=f"at most {free}")],
            )
    else:  # a buy OCO covers a short: there are none (long only)
        raise ProtocolError(MarketCode.INSUFFICIENT_POSITION, "an oco pair exits a position: long only, sell side")
    return Decimal(0)


def _check_buying_power(
    account: Account,
    side: str,
    quantity: Decimal,
    price: Decimal,
    instrument: Instrument,
    quotes: Mapping[str, Quote],
    open_orders: list[Order],
) -> Decimal:
    """A margin account's order: what it would open (beyond closing a position, after the open orders on
    its side) needs the instrument to be shortable if it is a short, and its initial margin free."""
    positions = selectors.positions_of_account(account.pk)
    held = selectors.held_after_open_orders(positions, open_orders, side=side).get(instrument.symbol, Decimal(0))
    opening = margin.opening_quantity(side=side, quantity=quantity, held=held)
    if opening <= 0:
        return Decimal(0)  # it only closes: never refused for margin
    if side == OrderSide.SELL and held - quantity < 0 and not instrument.shortable:
        raise ProtocolError(
            MarketCode.NOT_SHORTABLE,
            f"{instrument.symbol} cannot be sold short: at most {max(held, Decimal(0))} can be sold",
            details=[ErrorDetail(field="quantity", problem=f"at most {max(held, Decimal(0))}")],
        )
    figures = selectors.margin_figures(cash=account.cash, positions=positions, open_orders=open_orders, quotes=quotes)
    if side == OrderSide.SELL and figures.equity < settings.MARKET_SHORT_MIN_EQUITY:
        raise ProtocolError(
            MarketCode.SHORT_EQUITY_TOO_LOW,
            f"a short needs {settings.MARKET_SHORT_MIN_EQUITY.normalize():f} of equity; "
            f"the account has {figures.equity.normalize():f}",
        )
    rates = selectors.margin_rates_of(instrument)
    need = margin.required(margin.Opening(opening, price, rates))
    free = figures.equity - figures.initial_margin
    if need > free:
        most = max(quantize(free / (price * rates.initial)), Decimal(0)) if price > 0 else Decimal(0)
        raise ProtocolError(
            MarketCode.INSUFFICIENT_BUYING_POWER,
            f"opening {opening.normalize():f} {instrument.symbol} needs {need.normalize():f} of initial margin and "
            f"{max(free, Decimal(0)).normalize():f} is free",
            details=[ErrorDetail(field="quantity", problem=f"at most about {most.normalize():f} more can be opened")],
        )
    return opening


def _check_limits(
    account: Account,
    symbol: str,
    quotes: Mapping[str, Quote],
    open_orders: list[Order],
    *,
    value: Decimal,
    buys: Decimal,
    new: bool,
) -> None:
    """Refuse an order beyond the account's risk limits (market_app.risk); reads nothing when it has none."""
    limits = selectors.risk_limits_of(account).under(selectors.risk_caps())
    if limits.none:
        return
    buying, _ = selectors.reserved_by_symbol(open_orders, dict(quotes))
    held: dict[str, Decimal] = {}  # signed: a margin account's shorts below zero
    for position in selectors.positions_of_account(account.pk):
        held[position.instrument.symbol] = position.quantity * selectors.position_price(position, quotes)
    exposure = risk.Exposure(
        equity=account.cash + sum(held.values(), Decimal(0)),
        positions_value=sum((abs(v) for v in held.values()), Decimal(0)),  # a short exposes as a long does
        open_buys_value=sum(buying.values(), Decimal(0)),
        symbol_value=abs(held.get(symbol, Decimal(0))) + buying.get(symbol, Decimal(0)),
        open_orders=len(open_orders),
    )
    risk.check_order(limits, value=value, buys=buys, new=new, exposure=exposure)


def account_risk_limits_set(*, user_id: int, limits: RiskLimits, account_id: int | None = None) -> Account:
    """Set every risk limit of an open account of the user (default: the current one) at once (a None
    is no limit), each at most its cap."""
    wanted = risk.Limits(
        max_order_value=_decimal_or_none(limits.maxOrderValue),
        max_position_value=_decimal_or_none(limits.maxPositionValue),
        max_open_orders=limits.maxOpenOrders,
        max_leverage=_decimal_or_none(limits.maxLeverage),
        daily_loss_limit=_decimal_or_none(limits.dailyLossLimit),
    )
    caps = selectors.risk_caps()
    above = wanted.above(caps)
    if above:
        raise ProtocolError(
            AccountCode.LIMIT_ABOVE_CAP,
            "a risk limit is above the operator's cap",
            details=[
                ErrorDetail(field=f"limits.{_camel(name)}", problem=f"at most {getattr(caps, name)}") for name in above
            ],
        )
    with transaction.atomic():
        account = account_to_change(user_id=user_id, account_id=account_id)
        for name in risk.NAMES:
            setattr(account, name, getattr(wanted, name))
        account.save(update_fields=list(risk.NAMES))
    return account


def _decimal_or_none(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class MarketPrices:
    quotes: dict[str, Quote]
    seq: int  # the shared feed's tick (a day order's end is counted from it)
    own: bool  # the user's own market (a replay or synthetic walk)
    day: str  # its market day, as a daily loss limit counts it


def _prices_of_market(
    simulator: Simulator | None, own_quotes: Mapping[str, Quote] | None, own_time_ms: int | None = None
) -> MarketPrices:
    """The prices an order of the user is checked against: their own market's (as their connection last
    saw them at `own_time_ms`, else as its worker last checkpointed them) or the shared feed's."""
    if simulator is not None and simulator.own_market:
        quotes = dict(own_quotes) if own_quotes else selectors.own_market_quotes(simulator)
        time_ms = own_time_ms if own_quotes and own_time_ms is not None else selectors.own_market_time_ms(simulator)
        return MarketPrices(quotes=quotes, seq=0, own=True, day=selectors.bar_day(simulator.id, time_ms or 0))
    feed = selectors.feed_snapshot()
    return MarketPrices(quotes=feed.quotes, seq=feed.seq, own=False, day=selectors.feed_day(feed.seq))


def order_place(
    *,
    user_id: int,
    ticket: OrderTicket,
    own_quotes: Mapping[str, Quote] | None = None,
    own_time_ms: int | None = None,
) -> Order:
    """Validate and record a new order; the worker running the user's simulator matches it from the
    first tick after the profile's entry latency (in a market of the simulator's own: from its next bar,
    checked against `own_quotes`, the prices of the bar at `own_time_ms` the user's connection last got).

    With a `clientOrderId` the call is idempotent: placing the same ticket again returns the first order.
    An `oco` ticket records two orders (its limit leg, returned, and its stop-loss leg) in one group.
    """
    if ticket.clientOrderId:
        existing = selectors.orders_of_user(user_id).filter(client_order_id=ticket.clientOrderId).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            # Read under the transaction: a simulator stopped since (its open orders canceled) must not take this one.
            simulator = running_simulator(user_id=user_id)
            prices = _prices_of_market(simulator, own_quotes, own_time_ms)
            instrument = selectors.instrument_by_symbol(ticket.symbol, active_only=not prices.own)
            if instrument is None or (prices.own and instrument.symbol not in prices.quotes):
                raise ProtocolError(MarketCode.UNKNOWN_SYMBOL, f"unknown symbol {ticket.symbol!r}")
            quote = prices.quotes.get(instrument.symbol)
            last = quote.price if quote is not None else None
            spec = order_specs.spec_of_ticket(
                ticket, tick_size=instrument.tick_size, symbol=instrument.symbol, last=last
            )
            simulator = _require_running(simulator)
            account = account_for(user_id, lock=True)
            if last is None:
                if spec.order_type != OrderType.LIMIT:
                    raise ProtocolError(MarketCode.MARKET_UNAVAILABLE)
                last = spec.limit_price
            assert last is not None
            if account.loss_halted_day and account.loss_halted_day == prices.day:
                raise ProtocolError(
                    MarketCode.DAILY_LOSS_LIMIT, "the daily loss limit was reached: new orders wait for the next day"
                )
            open_orders = selectors.open_orders_of_users([user_id])  # read once for both checks
            shorting = _check_affordable(account, spec, instrument, last, prices.quotes, open_orders)
            value = quantize(spec.quantity * spec.cost_price(last))
            # What it adds to the positions: a buy's value, or the short a margin account's sell opens.
            buys = value if spec.side == OrderSide.BUY and spec.order_class != OrderClass.OCO else Decimal(0)
            buys += quantize(shorting * spec.cost_price(last))
            _check_limits(account, instrument.symbol, prices.quotes, open_orders, value=value, buys=buys, new=True)
            realism = realism_of(simulator.profile)
            common = {
                "user_id": user_id,
                "account": account,
                "simulator": simulator,
                "instrument": instrument,
                "side": spec.side,
                "quantity": spec.quantity,
                "time_in_force": spec.time_in_force,
                "order_class": spec.order_class,
                "active_at_ms": _active_at(realism),
                # In an own market a day order ends with its bars' day (market_app.own_market).
                "expires_seq": _day_end(prices.seq)
                if spec.time_in_force == TimeInForce.DAY and not prices.own
                else None,
            }
            group = uuid.uuid4() if spec.order_class == OrderClass.OCO else None
            order = Order.objects.create(
                **common,
                client_order_id=ticket.clientOrderId or "",
                order_type=spec.order_type,
                limit_price=spec.limit_price,
                stop_price=spec.stop_price,
                trail_amount=spec.trail_amount,
                trail_percent=spec.trail_percent,
                trail_anchor=last if spec.order_type == OrderType.TRAILING_STOP else None,
                take_profit_price=spec.take_profit_price if spec.order_class == OrderClass.BRACKET else None,
                stop_loss_price=spec.stop_loss_price if spec.order_class == OrderClass.BRACKET else None,
                stop_loss_limit_price=spec.stop_loss_limit_price if spec.order_class == OrderClass.BRACKET else None,
                oco_group=group,
            )
            if group is not None:
                assert spec.stop_loss_price is not None
                _stop_leg(common, spec.stop_loss_price, spec.stop_loss_limit_price, group, parent=None)
            _orders_changed(user_id, simulator)
            metrics.ORDERS.labels(order.order_type, order.side).inc()
            return order
    except IntegrityError:
        # The same clientOrderId placed twice at once: the first one won.
        existing = selectors.orders_of_user(user_id).filter(client_order_id=ticket.clientOrderId or "").first()
        if existing is None or not ticket.clientOrderId:
            raise
        return existing


def _stop_leg(
    common: dict[str, Any], stop: Decimal, limit: Decimal | None, group: uuid.UUID, parent: Order | None
) -> Order:
    return Order.objects.create(
        **common,
        order_type=OrderType.STOP if limit is None else OrderType.STOP_LIMIT,
        stop_price=stop,
        limit_price=limit,
        oco_group=group,
        parent=parent,
    )


def _activate_bracket(entry: Order) -> None:
    """The entry of a bracket is done (filled, or ended part filled): its exits sell (or buy back)
    what it filled, one-cancels-other, trading at once (they wait at the exchange, no latency)."""
    if entry.order_class != OrderClass.BRACKET or entry.parent_id is not None or entry.filled_qty <= 0:
        return  # not an entry (an exit is of class bracket too), or nothing to protect
    if entry.take_profit_price is None or entry.stop_loss_price is None or entry.children.exists():
        return
    group = uuid.uuid4()
    common: dict[str, Any] = {
        "user_id": entry.user_id,
        "account_id": entry.account_id,
        "simulator_id": entry.simulator_id,
        "instrument": entry.instrument,
        "side": OrderSide.SELL if entry.side == OrderSide.BUY else OrderSide.BUY,
        "quantity": entry.filled_qty,
        "time_in_force": entry.time_in_force,
        "order_class": OrderClass.BRACKET,
        "expires_seq": entry.expires_seq,
    }
    Order.objects.create(
        **common, order_type=OrderType.LIMIT, limit_price=entry.take_profit_price, oco_group=group, parent=entry
    )
    _stop_leg(common, entry.stop_loss_price, entry.stop_loss_limit_price, group, parent=entry)


def _cancel_group(order: Order, reason: str) -> None:
    """The other legs of the order's OCO group end with it."""
    if order.oco_group is None:
        return
    Order.objects.filter(oco_group=order.oco_group, status__in=OPEN_ORDER_STATUSES).exclude(pk=order.pk).update(
        status=OrderStatus.CANCELED, reason=reason[:200], updated_at=timezone.now()
    )


def _end(order: Order, status: OrderStatus, reason: str) -> None:
    order.status = status
    order.reason = reason[:200]
    order.save(update_fields=["status", "reason", "updated_at"])
    _cancel_group(order, f"one cancels other: {reason}")
    _activate_bracket(order)


@dataclass(frozen=True)
class CancelTicket:
    """A cancel on its way: it takes effect `latency_ms` after it arrived (the profile's entry latency)."""

    order_id: uuid.UUID
    latency_ms: int


def order_cancel_arrive(*, user_id: int, order_id: uuid.UUID) -> CancelTicket:
    """Check a cancel as it arrives (the order must be open); `order_cancel` applies it after the latency."""
    order = one_or_none(Order.objects.select_related("simulator").filter(pk=order_id, user_id=user_id))
    if order is None:
        raise ProtocolError(MarketCode.ORDER_NOT_FOUND)
    if not order.is_open:
        raise ProtocolError(MarketCode.ORDER_NOT_CANCELABLE, f"the order is {order.status}")
    profile = order.simulator.profile if order.simulator is not None else None
    return CancelTicket(order_id=order.id, latency_ms=realism_of(profile).latency_ms)


@transaction.atomic
def order_cancel(*, user_id: int, order_id: uuid.UUID, raced: bool = False) -> Order:
    """Cancel an open order (and the rest of its OCO group). With `raced`, the order was open when the
    cancel arrived: a fill applied meanwhile that completed it won the race (`cancel_too_late`)."""
    order = one_or_none(Order.objects.select_for_update().filter(pk=order_id, user_id=user_id))
    if order is None:
        raise ProtocolError(MarketCode.ORDER_NOT_FOUND)
    if not order.is_open:
        if raced and order.status == OrderStatus.FILLED:
            raise ProtocolError(
                MarketCode.CANCEL_TOO_LATE,
                "the order filled before the cancel took effect",
                details=[ErrorDetail(field="status", problem=order.status)],
            )
        raise ProtocolError(MarketCode.ORDER_NOT_CANCELABLE, f"the order is {order.status}")
    order = Order.objects.select_related("instrument").get(pk=order.pk)
    _end(order, OrderStatus.CANCELED, "canceled by the user")
    _orders_changed(user_id, running_simulator(user_id=user_id))
    return Order.objects.select_related("instrument").get(pk=order.pk)


def _spec_of_order(order: Order) -> OrderSpec:
    return OrderSpec(
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        limit_price=order.limit_price,
        time_in_force=order.time_in_force,
        order_class=order.order_class,
        stop_price=order.stop_price,
        trail_amount=order.trail_amount,
        trail_percent=order.trail_percent,
        take_profit_price=order.take_profit_price,
        stop_loss_price=order.stop_loss_price,
        stop_loss_limit_price=order.stop_loss_limit_price,
    )


def order_replace(
    *,
    user_id: int,
    order_id: uuid.UUID,
    amendment: OrderAmendment,
    own_quotes: Mapping[str, Quote] | None = None,
) -> Order:
    """Amend an open order's quantity or prices. It takes effect after the entry latency (until then it
    does not trade), and a new price or a larger quantity sends it to the back of the queue (a smaller
    quantity keeps its place), as at an exchange. Checked against the prices of its simulator's market
    (`own_quotes` as for `order_place`)."""
    with transaction.atomic():
        order = one_or_none(
            Order.objects.select_for_update(of=("self",))
            .select_related("instrument", "simulator")
            .filter(pk=order_id, user_id=user_id)
        )
        if order is None:
            raise ProtocolError(MarketCode.ORDER_NOT_FOUND)
        if not order.is_open:
            raise ProtocolError(MarketCode.ORDER_NOT_REPLACEABLE, f"the order is {order.status}")
        instrument = order.instrument
        change = order_specs.amendment_of(amendment, tick_size=instrument.tick_size, symbol=instrument.symbol)
        if order.parent_id is not None and change.quantity is not None:
            raise ProtocolError(MarketCode.ORDER_NOT_REPLACEABLE, "a bracket exit's quantity follows its entry")
        if change.quantity is not None and change.quantity <= order.filled_qty:
            raise ProtocolError(MarketCode.INVALID_QUANTITY, f"the order already filled {order.filled_qty}")
        # Read once: the checks below value at the same prices.
        quotes = _prices_of_market(order.simulator, own_quotes).quotes
        quote = quotes.get(instrument.symbol)
        before = _spec_of_order(order)
        after = order_specs.amended(
            before, change, last=quote.price if quote is not None else None, triggered=order.triggered
        )
        if after == before:
            raise ProtocolError(MarketCode.ORDER_NOT_REPLACEABLE, "the replace changes nothing")
        account = account_for(user_id, lock=True)
        if account.account_type == AccountType.MARGIN:
            # As if placed anew with what it would have left, beside the other open orders.
            last = quote.price if quote is not None else instrument.start_price
            others = [o for o in selectors.open_orders_of_users([user_id]) if o.pk != order.pk]
            _check_buying_power(
                account,
                after.side,
                after.quantity - order.filled_qty,
                after.cost_price(last),
                instrument,
                quotes,
                others,
            )
            if after.side == OrderSide.BUY:
                extra = quantize((after.quantity - order.quantity) * after.cost_price(last))
                value = quantize(after.quantity * after.cost_price(last))
                _check_limits(
                    account, instrument.symbol, quotes, others, value=value, buys=max(extra, Decimal(0)), new=False
                )
        elif after.side == OrderSide.BUY and after.order_class != OrderClass.OCO:
            last = quote.price if quote is not None else instrument.start_price
            extra = quantize(
                (after.quantity - order.filled_qty) * after.cost_price(last) - order.remaining * before.cost_price(last)
            )
            open_orders = selectors.open_orders_of_users([user_id])  # read once for both checks
            reserved, _ = selectors.reserved_by_orders(open_orders, quotes)
            if extra > 0 and extra > account.cash - reserved:
                raise ProtocolError(MarketCode.INSUFFICIENT_CASH, "the larger order needs more cash than is free")
            value = quantize(after.quantity * after.cost_price(last))
            _check_limits(
                account, instrument.symbol, quotes, open_orders, value=value, buys=max(extra, Decimal(0)), new=False
            )
        elif after.side == OrderSide.SELL and after.quantity > before.quantity:
            position = one_or_none(Position.objects.filter(account_id=order.account_id, instrument=instrument))
            _, reserved_quantity = selectors.reserved_by_open_orders(user_id, {})
            free = (position.quantity if position else Decimal(0)) - reserved_quantity.get(instrument.symbol, 0)
            if after.quantity - before.quantity > free:
                raise ProtocolError(MarketCode.INSUFFICIENT_POSITION, f"{free} more can be sold")
        keeps_place = after.quantity < before.quantity and replace_spec(after, quantity=before.quantity) == before
        order.quantity = after.quantity
        order.limit_price = after.limit_price
        order.stop_price = after.stop_price
        order.trail_amount = after.trail_amount
        order.trail_percent = after.trail_percent
        if not keeps_place:
            order.queue_ahead = None
        profile = order.simulator.profile if order.simulator is not None else None
        order.active_at_ms = _active_at(realism_of(profile))
        order.save()
        _orders_changed(user_id, running_simulator(user_id=user_id))
    return Order.objects.select_related("instrument").get(pk=order_id)


def orders_cancel_open(*, user_id: int, reason: str) -> int:
    """Cancel every open order of the user (their simulator stopped: nothing would match them)."""
    canceled = Order.objects.filter(user_id=user_id, status__in=OPEN_ORDER_STATUSES).update(
        status=OrderStatus.CANCELED, reason=reason[:200], updated_at=timezone.now()
    )
    if canceled:
        account_snapshot_push(user_id)
    return canceled


def open_order_of(order: Order) -> OpenOrder:
    return OpenOrder(
        id=order.id,
        symbol=order.instrument.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        limit_price=order.limit_price,
        time_in_force=order.time_in_force,
        stop_price=order.stop_price,
        trail_amount=order.trail_amount,
        trail_percent=order.trail_percent,
        trail_anchor=order.trail_anchor,
        triggered=order.triggered,
        queue_ahead=order.queue_ahead,
        active_at_ms=order.active_at_ms,
        expires_seq=order.expires_seq,
        oco_group=order.oco_group,
    )


def open_orders_for_matching(user_ids: list[int]) -> dict[int, list[OpenOrder]]:
    orders: dict[int, list[OpenOrder]] = {user_id: [] for user_id in user_ids}
    for order in selectors.open_orders_of_users(user_ids):
        orders[order.user_id].append(open_order_of(order))
    return orders


def fills_apply(
    *,
    simulator_id: uuid.UUID,
    worker_id: str,
    epoch: int,
    user_id: int,
    fills: Sequence[FillIntent],
    changes: Sequence[StateChange] = (),
    expiries: Sequence[Expiry] = (),
    market_at: datetime | None = None,
) -> list[OpenOrder] | None:
    """Apply a tick's outcome for one user in one transaction: the orders' matcher state, the fills
    (with their commission), the orders the tick ended; returns the user's open orders after it.
    `market_at`: the time of the bar of a market of the simulator's own that the fills traded on.

    None when the worker no longer holds the simulator (another worker took over; it applies them).
    """
    with transaction.atomic():
        profile = profile_of_held_simulator(simulator_id=simulator_id, worker_id=worker_id, epoch=epoch)
        if profile is None:
            return None
        fee_factor = realism_of(profile).fee_factor
        for change in changes:
            Order.objects.filter(pk=change.order_id, user_id=user_id, status__in=OPEN_ORDER_STATUSES).update(
                trail_anchor=change.trail_anchor,
                triggered=change.triggered,
                queue_ahead=change.queue_ahead,
                updated_at=timezone.now(),  # a new version (market_app.order_versions)
            )
        account = account_for(user_id, lock=True)
        schedule = commission_schedule_of(account)
        changed = False
        for intent in fills:
            changed = _apply_one(account, user_id, intent, schedule, fee_factor, market_at) or changed
        for expiry in expiries:
            order = one_or_none(
                Order.objects.select_for_update(of=("self",))
                .select_related("instrument")
                .filter(pk=expiry.order_id, user_id=user_id, status__in=OPEN_ORDER_STATUSES)
            )
            if order is not None:
                _end(order, OrderStatus.CANCELED, expiry.reason)
                changed = True
        if changed:
            account.save(update_fields=["cash", "fees_paid", "updated_at"])
            account_snapshot_push(user_id)
    return open_orders_for_matching([user_id])[user_id]


def _apply_one(
    account: Account,
    user_id: int,
    intent: FillIntent,
    schedule: CommissionSchedule,
    fee_factor: float,
    market_at: datetime | None,
) -> bool:
    order = one_or_none(
        Order.objects.select_for_update(of=("self",))
        .select_related("instrument")
        .filter(pk=intent.order_id, account=account, status__in=OPEN_ORDER_STATUSES)
        # Not when a worker that adopted the simulator applies the tick again (its fill is there).
        .exclude(Exists(Fill.objects.filter(order=OuterRef("pk"), tick_seq=intent.tick_seq)))
    )
    if order is None:
        return False
    position, _ = Position.objects.select_for_update().get_or_create(
        account=account, instrument=order.instrument, defaults={"user_id": user_id}
    )
    quantity = min(intent.quantity, order.remaining)
    notional_before = order.filled_qty * (order.average_price or Decimal(0))

    def fee_for(size: Decimal) -> Decimal:
        return fill_fee(
            schedule,
            filled_before=order.filled_qty,
            notional_before=notional_before,
            quantity=size,
            price=intent.price,
            factor=fee_factor,
        )

    on_margin = account.account_type == AccountType.MARGIN
    # A margin account borrows what a buy costs beyond its cash and sells short what it does not hold
    # (its orders were checked against its buying power): only a cash account is held to them here.
    short = on_margin and order.instrument.shortable
    if order.side == OrderSide.BUY and not on_margin:
        affordable = (account.cash / intent.price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)
        quantity = min(quantity, max(affordable, Decimal(0)))
        if quantity > 0 and quantize(quantity * intent.price) + fee_for(quantity) > account.cash:
            # The commission too must be paid from the cash.
            spare = account.cash - fee_for(quantity)
            quantity = max((spare / intent.price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN), Decimal(0))
            if quantity > 0 and quantize(quantity * intent.price) + fee_for(quantity) > account.cash:
                quantity = Decimal(0)
    elif order.side == OrderSide.SELL and not short:
        quantity = min(quantity, max(position.quantity, Decimal(0)))
    if quantity <= 0:
        _end(
            order,
            OrderStatus.CANCELED,
            "not enough cash to fill" if order.side == OrderSide.BUY else "not enough position to fill",
        )
        return True
    fee = fee_for(quantity)
    effect = apply_fill(
        PositionState(position.quantity, position.average_price, position.realized_pnl),
        side=order.side,
        quantity=quantity,
        price=intent.price,
        fee=fee,
        short=short,
    )
    Fill.objects.create(
        order=order,
        user_id=user_id,
        account=account,
        instrument=order.instrument,
        side=order.side,
        quantity=quantity,
        price=intent.price,
        fee=fee,
        tick_seq=intent.tick_seq,
        market_at=market_at,
    )
    order.average_price = order_average_price(order.filled_qty, order.average_price, quantity, intent.price)
    order.filled_qty += quantity
    order.fee += fee
    order.status = OrderStatus.FILLED if order.filled_qty >= order.quantity else OrderStatus.PARTIALLY_FILLED
    order.save(update_fields=["average_price", "filled_qty", "fee", "status", "updated_at"])
    # The other legs of its OCO group end at its first fill; a bracket's entry, once filled, activates its exits.
    _cancel_group(order, "one cancels other: the other leg filled")
    if order.status == OrderStatus.FILLED:
        _activate_bracket(order)
    position.quantity = effect.position.quantity
    position.average_price = effect.position.average_price
    position.realized_pnl = effect.position.realized_pnl
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "updated_at"])
    account.cash += effect.cash_delta
    account.fees_paid += fee
    metrics.FILLS.labels(order.side).inc()
    return True


# --- The shared price feed (its producer holds its lease: simulator_app.leases) ------------------


@dataclass(frozen=True)
class FeedClaim:
    epoch: int
    seq: int
    seed: int
    quotes: dict[str, Quote]


@transaction.atomic
def feed_claim(*, worker_id: str) -> FeedClaim | None:
    """Become the feed's producer if nobody holds it (or its holder's lease lapsed)."""
    MarketFeed.objects.get_or_create(pk=1)
    feed = MarketFeed.objects.select_for_update().get(pk=1)
    if not feed.claim(worker_id=worker_id, now=timezone.now()):
        return None
    if settings.MARKET_SEED is not None:
        feed.seed = settings.MARKET_SEED
    elif feed.seed is None:
        feed.seed = secrets.randbits(31)
    feed.save()
    quotes = {symbol: Quote.from_state(state) for symbol, state in feed.quotes.items()}
    return FeedClaim(epoch=feed.lease_epoch, seq=feed.seq, seed=feed.seed, quotes=quotes)


def feed_advance(
    *, worker_id: str, epoch: int, seq: int, quotes: dict[str, Quote], market: TickMarketData | None = None
) -> bool:
    """Persist a tick (and renew the lease), then publish it to the ticks group once. False if
    another producer took over (then nothing is published). With `market` (the producer's books and
    candles of this tick) the bars it closed are stored, and the tick carries every profile's book and
    the open candles."""
    with transaction.atomic():
        now = timezone.now()
        state = {symbol: quote.to_state() for symbol, quote in quotes.items()}
        held = MarketFeed.objects.filter(pk=1).held_by(worker_id, epoch)
        advanced = bool(held.renew(now=now, seq=seq, quotes=state, produced_at=now))
        if advanced and market is not None and market.closed:
            # First write wins: a producer that took over mid-bar may close a bar its predecessor stored.
            Candle.objects.bulk_create([_candle_row(closed) for closed in market.closed], ignore_conflicts=True)
    if advanced:
        tick: MarketTickEvent = {
            "type": "market.tick",
            "seq": seq,
            "timestamp": market.timestamp if market is not None else now_ms(),
            "symbols": {symbol: quote.to_wire() for symbol, quote in quotes.items()},
        }
        if market is not None:
            tick["tops"] = market.tops_text()
            tick["books"] = market.books_text()
            tick["candles"] = market.candles_text()
            tick["prints"] = market.prints_text()
        notify(group=ticks_group(), event=tick)
        metrics.TICKS.inc()
    return advanced


def _candle_row(closed: ClosedBar) -> Candle:
    bar = closed.bar
    return Candle(
        symbol=closed.symbol,
        interval=closed.interval,
        start_ms=bar.start_ms,
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
    )


def candles_prune(*, now: int) -> int:
    """Delete closed bars older than their interval's retention (market_app.candles.RETENTION_MS)."""
    deleted = 0
    for interval, keep_ms in RETENTION_MS.items():
        deleted += Candle.objects.filter(interval=interval, start_ms__lt=now - keep_ms).delete()[0]
    return deleted


def feed_renew(*, worker_id: str, epoch: int) -> bool:
    return bool(MarketFeed.objects.filter(pk=1).held_by(worker_id, epoch).renew(now=timezone.now()))


def feed_release(*, worker_id: str) -> None:
    """Free the feed if this worker holds it, under whichever claim: a stopping worker may hold one it
    never recorded (committed while the coroutine that asked for it was being canceled)."""
    MarketFeed.objects.filter(pk=1, worker_id=worker_id).release(now=timezone.now())


# --- The account's history: resets and equity samples (docs/protocol.md §4c) -------------------

RESET_REASON = "canceled by an account reset"


def account_reset(*, user_id: int, account_id: int | None = None, by_operator: bool = False) -> AccountReset:
    """Set an open account (default: the current one) back to its starting cash, in one transaction
    under the account's lock.

    Needs no live simulator trading it (`account_in_use` otherwise). Open orders are canceled with a
    reason, positions cleared; orders and fills stay, and the AccountReset keeps the figures before, so
    the journal tells the epochs apart. The user's connections get the new snapshot after commit.
    """
    with transaction.atomic():
        account = account_to_change(user_id=user_id, account_id=account_id)
        simulator = live_simulator_of_user(user_id=user_id) if account.is_current else None
        if simulator is not None:
            raise ProtocolError(
                AccountCode.ACCOUNT_IN_USE, f"the simulator is {simulator.status}; stop it before resetting"
            )
        feed = selectors.feed_snapshot()
        positions = list(Position.objects.select_for_update().filter(account=account).select_related("instrument"))
        before: dict[str, dict[str, str]] = {}
        value = Decimal(0)
        for position in positions:
            quote = feed.quotes.get(position.instrument.symbol)
            value += position.quantity * (quote.price if quote is not None else position.average_price)
            before[position.instrument.symbol] = {
                "quantity": str(position.quantity),
                "averagePrice": str(position.average_price),
                "realizedPnl": str(position.realized_pnl),
            }
        value = quantize(value)
        now = timezone.now()
        canceled = Order.objects.filter(account=account, status__in=OPEN_ORDER_STATUSES).update(
            status=OrderStatus.CANCELED, reason=RESET_REASON, updated_at=now
        )
        Position.objects.filter(account=account).delete()
        reset = AccountReset.objects.create(
            account=account,
            at=now,
            by_operator=by_operator,
            starting_cash=account.starting_cash,
            cash_before=account.cash,
            positions_value_before=value,
            equity_before=account.cash + value,
            realized_pnl_before=sum((p.realized_pnl for p in positions), Decimal(0)),
            orders_canceled=canceled,
            positions_before=before,
        )
        account.cash = account.starting_cash
        account.fees_paid = Decimal(0)  # the new epoch's; the history's fills keep theirs
        account.save(update_fields=["cash", "fees_paid", "updated_at"])
        # The new epoch's curve starts at the starting cash.
        EquitySample.objects.create(
            account=account,
            at=now,
            tick_seq=feed.seq,
            equity=account.cash,
            cash=account.cash,
            positions_value=Decimal(0),
        )
        if account.is_current:
            account_snapshot_push(user_id)
    metrics.ACCOUNT_RESETS.labels("operator" if by_operator else "user").inc()
    return reset


def equity_samples_record(*, user_ids: Sequence[int], quotes: dict[str, Quote], tick_seq: int, at: datetime) -> int:
    """One equity sample per user's current account at a tick's prices, in one insert (three queries
    whatever the count; a user who never traded gets their account created first)."""
    accounts: dict[int, int] = {}
    cash: dict[int, Decimal] = {}
    for user_id, account_id, amount in Account.objects.filter(user_id__in=user_ids, is_current=True).values_list(
        "user_id", "id", "cash"
    ):
        accounts[user_id], cash[user_id] = account_id, amount
    for user_id in set(user_ids) - set(accounts):
        account = account_for(user_id)
        accounts[user_id], cash[user_id] = account.pk, account.cash
    values = dict.fromkeys(accounts, Decimal(0))
    held = (
        Position.objects.filter(account_id__in=accounts.values())
        .exclude(quantity=0)
        .values_list("user_id", "instrument__symbol", "quantity", "average_price")
    )  # shorts too: a margin account's are below zero
    for user_id, symbol, quantity, average in held:
        quote = quotes.get(symbol)
        values[user_id] += quantity * (quote.price if quote is not None else average)
    samples = [
        EquitySample(
            account_id=accounts[user_id],
            at=at,
            tick_seq=tick_seq,
            equity=cash[user_id] + quantize(value),
            cash=cash[user_id],
            positions_value=quantize(value),
        )
        for user_id, value in values.items()
    ]
    EquitySample.objects.bulk_create(samples)
    metrics.EQUITY_SAMPLES.inc(len(samples))
    return len(samples)


def daily_losses_watch(*, user_ids: Sequence[int], quotes: Mapping[str, Quote], day: str) -> list[int]:
    """At an equity sample of market `day` (selectors.feed_day, or bar_day for a market of the simulator's
    own): the accounts with a daily loss limit (theirs or the cap) note the day's first equity, and those
    whose equity has fallen the limit below it stop trading for the day: their open orders are canceled
    (the user's connections get the snapshot) and new ones refused. Returns the users stopped now."""
    caps = selectors.risk_caps()
    watched = {account.user_id: account for account in selectors.daily_loss_accounts(user_ids)}
    if not watched:
        return []
    value = dict.fromkeys(watched, Decimal(0))
    held = Position.objects.filter(account__in=watched.values()).exclude(quantity=0).select_related("instrument")
    for position in held:
        value[position.user_id] += position.quantity * selectors.position_price(position, quotes)
    stopped = []
    for user_id, account in watched.items():
        equity = account.cash + quantize(value[user_id])
        limit = selectors.risk_limits_of(account).under(caps).daily_loss_limit
        if account.loss_day != day:
            account.loss_day, account.loss_day_start_equity = day, equity
            account.save(update_fields=["loss_day", "loss_day_start_equity"])
        elif limit is not None and account.loss_halted_day != day:
            if not risk.loss_reached(limit, start=account.loss_day_start_equity, equity=equity):
                continue
            with transaction.atomic():
                account.loss_halted_day = day
                account.save(update_fields=["loss_halted_day"])
                reason = f"the daily loss limit of {limit.normalize():f} was reached"
                if orders_cancel_open(user_id=user_id, reason=reason):
                    _hint_worker(user_id, running_simulator(user_id=user_id))
            stopped.append(user_id)
    return stopped


# --- Margin calls (docs/protocol.md §4f) -------------------------------------------------------------

LIQUIDATION_REASON = "margin call not met: liquidation"


def margin_calls_watch(*, user_ids: Sequence[int], quotes: Mapping[str, Quote], at: datetime) -> list[int]:
    """At an equity sample (market time `at`): each margin account these users trade whose equity is below
    its maintenance margin gets a margin call, due MARKET_MARGIN_CALL_GRACE_S later; a call met by then
    (the equity back above) closes, one not met liquidates the positions. Returns the accounts liquidated."""
    liquidated = []
    for account_id in selectors.margin_accounts(user_ids).values_list("pk", flat=True):
        with transaction.atomic():
            account = Account.objects.select_for_update().get(pk=account_id)
            if _margin_call_step(account, quotes, at):
                liquidated.append(account_id)
    return liquidated


def _margin_call_step(account: Account, quotes: Mapping[str, Quote], at: datetime) -> bool:
    positions = [p for p in selectors.positions_of_account(account.pk) if p.quantity]
    figures = selectors.margin_figures(cash=account.cash, positions=positions, open_orders=[], quotes=quotes)
    call = one_or_none(MarginCall.objects.select_for_update().filter(account=account, status=MarginCallStatus.OPEN))
    if figures.margin_excess >= 0:
        if call is not None:
            call.status, call.closed_at = MarginCallStatus.MET, at
            call.save(update_fields=["status", "closed_at"])
            _margin_call_push(account, call)
        return False
    if call is None:
        call = MarginCall.objects.create(
            account=account,
            issued_at=at,
            due_at=at + timedelta(seconds=settings.MARKET_MARGIN_CALL_GRACE_S),
            equity=figures.equity,
            maintenance_margin=figures.maintenance_margin,
        )
        metrics.MARGIN_CALLS.labels("issued").inc()
        _margin_call_push(account, call)
        return False
    if at < call.due_at:
        return False
    simulator = running_simulator(user_id=account.user_id)
    if simulator is None:
        return False  # nothing would match the orders: at its next sample with a simulator running
    _liquidate(account, simulator, positions, quotes, figures)
    call.status, call.closed_at = MarginCallStatus.LIQUIDATED, at
    call.save(update_fields=["status", "closed_at"])
    metrics.MARGIN_CALLS.labels("liquidated").inc()
    _margin_call_push(account, call)
    return True


def _liquidate(
    account: Account,
    simulator: Simulator,
    positions: list[Position],
    quotes: Mapping[str, Quote],
    figures: margin.Figures,
) -> None:
    """The open orders canceled, then market orders closing whole positions, the largest maintenance
    requirement first, until what the rest require is within the equity."""
    orders_cancel_open(user_id=account.user_id, reason=LIQUIDATION_REASON)

    def requirement(position: Position) -> Decimal:
        return selectors.margin_holding(position, quotes).maintenance

    remaining = figures.maintenance_margin
    for position in sorted(positions, key=lambda p: (-requirement(p), p.instrument.symbol)):
        if remaining <= figures.equity:
            break
        Order.objects.create(
            user_id=account.user_id,
            account=account,
            simulator=simulator,
            instrument_id=position.instrument_id,
            side=OrderSide.SELL if position.quantity > 0 else OrderSide.BUY,
            order_type=OrderType.MARKET,
            quantity=abs(position.quantity),
            reason=LIQUIDATION_REASON,
            liquidation=True,
        )
        remaining -= requirement(position)
    _orders_changed(account.user_id, simulator)


DAYS_A_YEAR = Decimal(360)  # brokers' day count for borrow fees and margin interest


def margin_accruals_charge(*, user_ids: Sequence[int], quotes: Mapping[str, Quote], day: str, at: datetime) -> int:
    """At an equity sample of market `day`: each margin account these users trade that has not been charged
    up to this day is charged for the day that ended, from its cash: each short's borrow fee (its value
    times the instrument's yearly rate, over 360) and the interest on the cash it borrowed (below zero).
    An account's first sample only starts the count. Returns the charges made."""
    made = 0
    for account_id in selectors.margin_accounts(user_ids).exclude(charged_day=day).values_list("pk", flat=True):
        with transaction.atomic():
            account = Account.objects.select_for_update().get(pk=account_id)
            if account.charged_day == day:
                continue
            ended, account.charged_day = account.charged_day, day
            charges = _accruals(account, quotes, ended, at) if ended else []
            for charge in charges:
                account.cash -= charge.amount
            AccountCharge.objects.bulk_create(charges)
            account.save(update_fields=["cash", "charged_day", "updated_at"])
            if charges:
                account_snapshot_push(account.user_id)
            made += len(charges)
    return made


def _accruals(account: Account, quotes: Mapping[str, Quote], day: str, at: datetime) -> list[AccountCharge]:
    charges = []
    shorts: dict[str, str] = {}
    fee = Decimal(0)
    for position in selectors.positions_of_account(account.pk):
        if position.quantity >= 0:
            continue
        value = -position.quantity * selectors.position_price(position, quotes)
        rate = position.instrument.borrow_rate
        fee += value * (settings.MARKET_BORROW_RATE if rate is None else rate) / DAYS_A_YEAR
        shorts[position.instrument.symbol] = f"{quantize(value).normalize():f}"
    if quantize(fee) > 0:
        charges.append(
            AccountCharge(
                account=account, kind=ChargeKind.BORROW_FEE, day=day, at=at, amount=quantize(fee), details=shorts
            )
        )
    interest = quantize(max(-account.cash, Decimal(0)) * settings.MARKET_MARGIN_INTEREST_RATE / DAYS_A_YEAR)
    if interest > 0:
        charges.append(
            AccountCharge(
                account=account,
                kind=ChargeKind.MARGIN_INTEREST,
                day=day,
                at=at,
                amount=interest,
                details={"borrowed": f"{(-account.cash).normalize():f}"},
            )
        )
    return charges


def _margin_call_push(account: Account, call: MarginCall) -> None:
    message = MarginCallUpdate(
        accountId=account.pk,
        call=MarginCallView(
            callId=call.pk,
            status=call.status,
            issuedAt=epoch_ms(call.issued_at),
            dueAt=epoch_ms(call.due_at),
            closedAt=optional_epoch_ms(call.closed_at),
            equity=float(call.equity),
            maintenanceMargin=float(call.maintenance_margin),
        ),
        timestamp=now_ms(),
    )
    push(
        group=user_group(account.user_id),
        message=message,
        sessions=lambda: active_session_ids_of_user(account.user_id),
    )


def equity_samples_prune(*, before: datetime) -> int:
    deleted, _ = EquitySample.objects.filter(at__lt=before).delete()
    return deleted
