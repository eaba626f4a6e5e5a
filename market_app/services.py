"""Writes of the market app: accounts, placing and canceling orders, and applying fills.

Every fill changes the order, a fill record, the position and the cash in one
transaction, under a lock on the account. A fill names the tick it traded on and a
unique constraint allows one fill per order and tick, so a fill is never applied twice,
even when a worker that was killed mid-tick is replaced by one that replays it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from market_app import account_metrics, metrics, selectors
from market_app.errors import AccountCode, MarketCode
from market_app.events import MarketTickEvent, OrdersChangedCommand
from market_app.groups import ticks_group
from market_app.matching import FillIntent, OpenOrder, PositionState, apply_fill, order_average_price, quantize
from market_app.messages import OrderTicket
from market_app.models import (
    OPEN_ORDER_STATUSES,
    Account,
    AccountReset,
    EquitySample,
    Fill,
    Instrument,
    MarketFeed,
    Order,
    OrderSide,
    OrderStatus,
    Position,
)
from market_app.prices import Quote
from market_app.snapshots import exchange_data_status
from sessions_app.groups import user_group
from sessions_app.realtime import ErrorDetail, ProtocolError, notify, now_ms, push
from sessions_app.selectors import active_session_ids_of_user
from simulator_app.errors import SimulatorCode
from simulator_app.models import Simulator
from simulator_app.selectors import live_simulator_of_user, simulator_is_held
from simulator_app.selectors import running_simulator_of_user as running_simulator

MAX_DECIMALS = 8
MAX_AMOUNT = 1_000_000_000


def account_for(user_id: int, *, lock: bool = False) -> Account:
    query = Account.objects.select_for_update() if lock else Account.objects
    account = query.filter(user_id=user_id).first()
    if account is None:
        cash = Decimal(settings.MARKET_STARTING_CASH)
        Account.objects.get_or_create(user_id=user_id, defaults={"cash": cash, "starting_cash": cash})
        account = query.get(user_id=user_id)
    return account


def _decimal(value: float, code: MarketCode, field: str) -> Decimal:
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


def _limit_price(ticket: OrderTicket, instrument: Instrument) -> Decimal | None:
    if ticket.orderType == "market":
        if ticket.limitPrice is not None:
            raise ProtocolError(MarketCode.INVALID_PRICE, "a market order takes no limitPrice")
        return None
    if ticket.limitPrice is None:
        raise ProtocolError(MarketCode.INVALID_PRICE, "a limit order needs a limitPrice")
    price = _decimal(ticket.limitPrice, MarketCode.INVALID_PRICE, "limitPrice")
    if price % instrument.tick_size:
        raise ProtocolError(
            MarketCode.INVALID_PRICE, f"limitPrice must be a multiple of {instrument.symbol}'s tick size"
        )
    return price


def running_simulator_of_user(user_id: int) -> Simulator:
    simulator = running_simulator(user_id=user_id)
    if simulator is None:
        raise ProtocolError(
            SimulatorCode.SIMULATOR_NOT_RUNNING, "orders need a running simulator; send start_simulator"
        )
    return simulator


def _account_changed(user_id: int) -> None:
    """After commit, send the user's connections a fresh snapshot of their account.

    Built once for all of the user's connections, and numbered in their session streams:
    order and position updates are never conflated, and are replayed on `reconnect`.
    """
    push(
        group=user_group(user_id),
        message=lambda: exchange_data_status(user_id=user_id, reason="orders_changed"),
        sessions=lambda: active_session_ids_of_user(user_id),
    )


def _orders_changed(user_id: int, simulator: Simulator | None) -> None:
    if simulator is not None and simulator.worker is not None:
        # A hint for the worker matching this user's orders (it also reloads them every lease renewal).
        command: OrdersChangedCommand = {"type": "market.orders_changed", "userId": user_id}
        notify(channel=simulator.worker.channel_name, event=command)
    _account_changed(user_id)


def order_place(*, user_id: int, ticket: OrderTicket) -> Order:
    """Validate and record a new order; the worker running the user's simulator matches it from the next tick.

    With a `clientOrderId` the call is idempotent: placing the same ticket again returns the first order.
    """
    if ticket.clientOrderId:
        existing = selectors.orders_of_user(user_id).filter(client_order_id=ticket.clientOrderId).first()
        if existing is not None:
            return existing
    instrument = selectors.instrument_by_symbol(ticket.symbol)
    if instrument is None:
        raise ProtocolError(MarketCode.UNKNOWN_SYMBOL, f"unknown symbol {ticket.symbol!r}")
    quantity = _decimal(ticket.quantity, MarketCode.INVALID_QUANTITY, "quantity")
    limit_price = _limit_price(ticket, instrument)
    try:
        with transaction.atomic():
            simulator = running_simulator_of_user(user_id)
            account = account_for(user_id, lock=True)
            feed = selectors.feed_snapshot()
            quote = feed.quotes.get(instrument.symbol)
            # The unit price a buy is costed at: its limit, or for a market order the last price.
            if limit_price is not None:
                price = limit_price
            elif quote is not None:
                price = quote.price
            else:
                raise ProtocolError(MarketCode.MARKET_UNAVAILABLE)
            reserved_cash, reserved_quantity = selectors.reserved_by_open_orders(user_id, feed.quotes)
            if ticket.side == "buy":
                cost = quantize(quantity * price)
                available = account.cash - reserved_cash
                if cost > available:
                    raise ProtocolError(
                        MarketCode.INSUFFICIENT_CASH,
                        f"the order needs about {cost} and {max(available, Decimal(0))} is available",
                        details=[ErrorDetail(field="quantity", problem=f"at most {available} in cash is free")],
                    )
            else:
                position = Position.objects.filter(user_id=user_id, instrument=instrument).first()
                held = position.quantity if position is not None else Decimal(0)
                free = held - reserved_quantity.get(instrument.symbol, Decimal(0))
                if quantity > free:
                    raise ProtocolError(
                        MarketCode.INSUFFICIENT_POSITION,
                        f"{free} {instrument.symbol} can be sold, not {quantity}",
                        details=[ErrorDetail(field="quantity", problem=f"at most {free}")],
                    )
            order = Order.objects.create(
                user_id=user_id,
                simulator=simulator,
                instrument=instrument,
                client_order_id=ticket.clientOrderId or "",
                side=ticket.side,
                order_type=ticket.orderType,
                quantity=quantity,
                limit_price=limit_price,
            )
            _orders_changed(user_id, simulator)
            metrics.ORDERS.labels(order.order_type, order.side).inc()
            return order
    except IntegrityError:
        # The same clientOrderId placed twice at once: the first one won.
        existing = selectors.orders_of_user(user_id).filter(client_order_id=ticket.clientOrderId or "").first()
        if existing is None or not ticket.clientOrderId:
            raise
        return existing


@transaction.atomic
def order_cancel(*, user_id: int, order_id: uuid.UUID) -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id, user_id=user_id).first()
    if order is None:
        raise ProtocolError(MarketCode.ORDER_NOT_FOUND)
    if not order.is_open:
        raise ProtocolError(MarketCode.ORDER_NOT_CANCELABLE, f"the order is {order.status}")
    order.status = OrderStatus.CANCELED
    order.reason = "canceled by the user"
    order.save(update_fields=["status", "reason", "updated_at"])
    _orders_changed(user_id, running_simulator(user_id=user_id))
    return Order.objects.select_related("instrument").get(pk=order.pk)


def orders_cancel_open(*, user_id: int, reason: str) -> int:
    """Cancel every open order of the user (their simulator stopped: nothing would match them)."""
    canceled = Order.objects.filter(user_id=user_id, status__in=OPEN_ORDER_STATUSES).update(
        status=OrderStatus.CANCELED, reason=reason[:200], updated_at=timezone.now()
    )
    if canceled:
        _account_changed(user_id)
    return canceled


def open_orders_for_matching(user_ids: list[int]) -> dict[int, list[OpenOrder]]:
    orders: dict[int, list[OpenOrder]] = {user_id: [] for user_id in user_ids}
    for order in selectors.open_orders_of_users(user_ids):
        orders[order.user_id].append(
            OpenOrder(
                id=order.id,
                symbol=order.instrument.symbol,
                side=order.side,
                order_type=order.order_type,
                quantity=order.quantity,
                filled_qty=order.filled_qty,
                limit_price=order.limit_price,
            )
        )
    return orders


def fills_apply(
    *, simulator_id: uuid.UUID, worker_id: str, epoch: int, user_id: int, fills: Sequence[FillIntent]
) -> list[OpenOrder] | None:
    """Apply a tick's fills for one user in one transaction; returns the user's open orders after it.

    None when the worker no longer holds the simulator (another worker took over; it applies them).
    """
    with transaction.atomic():
        if not simulator_is_held(simulator_id=simulator_id, worker_id=worker_id, epoch=epoch):
            return None
        account = account_for(user_id, lock=True)
        changed = False
        for intent in fills:
            changed = _apply_one(account, user_id, intent) or changed
        if changed:
            account.save(update_fields=["cash", "updated_at"])
            _account_changed(user_id)
    return open_orders_for_matching([user_id])[user_id]


def _apply_one(account: Account, user_id: int, intent: FillIntent) -> bool:
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("instrument")
        .filter(pk=intent.order_id, user_id=user_id, status__in=OPEN_ORDER_STATUSES)
        .first()
    )
    if order is None or Fill.objects.filter(order=order, tick_seq=intent.tick_seq).exists():
        return False
    position, _ = Position.objects.select_for_update().get_or_create(user_id=user_id, instrument=order.instrument)
    quantity = min(intent.quantity, order.remaining)
    if order.side == OrderSide.BUY:
        affordable = (account.cash / intent.price).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
        quantity = min(quantity, max(affordable, Decimal(0)))
    else:
        quantity = min(quantity, position.quantity)
    if quantity <= 0:
        order.status = OrderStatus.CANCELED
        order.reason = "not enough cash to fill" if order.side == OrderSide.BUY else "not enough position to fill"
        order.save(update_fields=["status", "reason", "updated_at"])
        return True
    effect = apply_fill(
        PositionState(position.quantity, position.average_price, position.realized_pnl),
        side=order.side,
        quantity=quantity,
        price=intent.price,
    )
    Fill.objects.create(
        order=order,
        user_id=user_id,
        instrument=order.instrument,
        side=order.side,
        quantity=quantity,
        price=intent.price,
        tick_seq=intent.tick_seq,
    )
    order.average_price = order_average_price(order.filled_qty, order.average_price, quantity, intent.price)
    order.filled_qty += quantity
    order.status = OrderStatus.FILLED if order.filled_qty >= order.quantity else OrderStatus.PARTIALLY_FILLED
    order.save(update_fields=["average_price", "filled_qty", "status", "updated_at"])
    position.quantity = effect.position.quantity
    position.average_price = effect.position.average_price
    position.realized_pnl = effect.position.realized_pnl
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "updated_at"])
    account.cash += effect.cash_delta
    metrics.FILLS.labels(order.side).inc()
    return True


# --- The shared price feed (its producer holds a lease, like a simulator's worker) ------------


@dataclass(frozen=True)
class FeedClaim:
    epoch: int
    seq: int
    seed: int
    quotes: dict[str, Quote]


def _feed_lease_end() -> datetime:
    return timezone.now() + timedelta(milliseconds=settings.SIMULATOR_LEASE_TTL_MS)


@transaction.atomic
def feed_claim(*, worker_id: str) -> FeedClaim | None:
    """Become the feed's producer if nobody holds it (or its holder's lease lapsed)."""
    MarketFeed.objects.get_or_create(pk=1)
    feed = MarketFeed.objects.select_for_update().get(pk=1)
    if feed.worker_id not in (None, worker_id) and feed.lease_expires_at and feed.lease_expires_at >= timezone.now():
        return None
    if settings.MARKET_SEED is not None:
        feed.seed = settings.MARKET_SEED
    elif feed.seed is None:
        feed.seed = secrets.randbits(31)
    feed.worker_id = worker_id
    feed.lease_epoch += 1
    feed.lease_expires_at = _feed_lease_end()
    feed.save()
    quotes = {symbol: Quote.from_state(state) for symbol, state in feed.quotes.items()}
    return FeedClaim(epoch=feed.lease_epoch, seq=feed.seq, seed=feed.seed, quotes=quotes)


def feed_advance(*, worker_id: str, epoch: int, seq: int, quotes: dict[str, Quote]) -> bool:
    """Persist a tick (and renew the lease), then publish it to the ticks group once. False if
    another producer took over (then nothing is published)."""
    advanced = bool(
        MarketFeed.objects.filter(pk=1, worker_id=worker_id, lease_epoch=epoch).update(
            seq=seq,
            quotes={symbol: quote.to_state() for symbol, quote in quotes.items()},
            produced_at=timezone.now(),
            lease_expires_at=_feed_lease_end(),
        )
    )
    if advanced:
        tick: MarketTickEvent = {
            "type": "market.tick",
            "seq": seq,
            "timestamp": now_ms(),
            "symbols": {symbol: quote.to_wire() for symbol, quote in quotes.items()},
        }
        notify(group=ticks_group(), event=tick)
        metrics.TICKS.inc()
    return advanced


def feed_renew(*, worker_id: str, epoch: int) -> bool:
    return bool(
        MarketFeed.objects.filter(pk=1, worker_id=worker_id, lease_epoch=epoch).update(
            lease_expires_at=_feed_lease_end()
        )
    )


def feed_release(*, worker_id: str, epoch: int) -> None:
    MarketFeed.objects.filter(pk=1, worker_id=worker_id, lease_epoch=epoch).update(
        worker=None, lease_expires_at=timezone.now()
    )


# --- The account's history: resets and equity samples (docs/protocol.md §4c) -------------------

RESET_REASON = "canceled by an account reset"


def account_reset(*, user_id: int, by_operator: bool = False) -> AccountReset:
    """Set the account back to its starting cash, in one transaction under the account's lock.

    Needs no live simulator (`account_in_use` otherwise). Open orders are canceled with a reason,
    positions cleared; orders and fills stay, and the AccountReset keeps the figures before, so the
    journal tells the epochs apart. The user's connections get the new snapshot after commit.
    """
    with transaction.atomic():
        account = account_for(user_id, lock=True)
        simulator = live_simulator_of_user(user_id=user_id)
        if simulator is not None:
            raise ProtocolError(
                AccountCode.ACCOUNT_IN_USE, f"the simulator is {simulator.status}; stop it before resetting"
            )
        feed = selectors.feed_snapshot()
        positions = list(Position.objects.select_for_update().filter(user_id=user_id).select_related("instrument"))
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
        canceled = Order.objects.filter(user_id=user_id, status__in=OPEN_ORDER_STATUSES).update(
            status=OrderStatus.CANCELED, reason=RESET_REASON, updated_at=now
        )
        Position.objects.filter(user_id=user_id).delete()
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
        account.save(update_fields=["cash", "updated_at"])
        # The new epoch's curve starts at the starting cash.
        EquitySample.objects.create(
            account=account,
            at=now,
            tick_seq=feed.seq,
            equity=account.cash,
            cash=account.cash,
            positions_value=Decimal(0),
        )
        _account_changed(user_id)
    account_metrics.ACCOUNT_RESETS.labels("operator" if by_operator else "user").inc()
    return reset


def equity_samples_record(*, user_ids: Sequence[int], quotes: dict[str, Quote], tick_seq: int, at: datetime) -> int:
    """One equity sample per user at a tick's prices, in one insert (three queries whatever the count;
    a user who never traded gets their account created first)."""
    accounts: dict[int, int] = {}
    cash: dict[int, Decimal] = {}
    for user_id, account_id, amount in Account.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "id", "cash"
    ):
        accounts[user_id], cash[user_id] = account_id, amount
    for user_id in set(user_ids) - set(accounts):
        account = account_for(user_id)
        accounts[user_id], cash[user_id] = account.pk, account.cash
    values = dict.fromkeys(accounts, Decimal(0))
    held = Position.objects.filter(user_id__in=user_ids, quantity__gt=0).values_list(
        "user_id", "instrument__symbol", "quantity", "average_price"
    )
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
    account_metrics.EQUITY_SAMPLES.inc(len(samples))
    return len(samples)


def equity_samples_prune(*, before: datetime) -> int:
    deleted, _ = EquitySample.objects.filter(at__lt=before).delete()
    return deleted
