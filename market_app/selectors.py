"""Reads of the market app, and the views of an account the messages and the REST API show."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from market_app import margin, risk
from market_app.errors import AccountCode
from market_app.liquidity import LiquidityParams
from market_app.marketdata import SymbolLiquidity, tops_of
from market_app.models import (
    OPEN_ORDER_STATUSES,
    Account,
    AccountType,
    Candle,
    Fill,
    Instrument,
    MarketFeed,
    Order,
    OrderSide,
    Position,
)
from market_app.order_versions import KeptByVersion, Read
from market_app.prices import Quote
from market_app.realism import ProfileName
from sessions_app.realtime.errors import ProtocolError
from sessions_app.rows import one_or_none
from simulator_app.models import Simulator
from simulator_app.selectors import live_simulator_of_user

logger = logging.getLogger(__name__)

RECENT_CLOSED_ORDERS = 50


def active_instruments() -> list[Instrument]:
    return list(Instrument.objects.filter(is_active=True))


def instrument_by_symbol(symbol: str, *, active_only: bool = True) -> Instrument | None:
    """The instrument of `symbol`; with active_only, only one in the shared feed (a replay trades a
    dataset's symbols, whose instruments may be kept out of it)."""
    found = Instrument.objects.filter(symbol=symbol)
    return one_or_none(found.filter(is_active=True) if active_only else found)


def instruments_of_symbols(symbols: list[str]) -> list[Instrument]:
    return list(Instrument.objects.filter(symbol__in=symbols))


@dataclass(frozen=True)
class FeedSnapshot:
    seq: int
    quotes: dict[str, Quote]
    seed: int | None = None


def feed_snapshot() -> FeedSnapshot:
    """The last tick the feed persisted (prices of every instrument)."""
    row = MarketFeed.objects.filter(pk=1).values_list("seq", "quotes", "seed").first()
    if row is None:
        return FeedSnapshot(0, {})
    return FeedSnapshot(row[0], {symbol: Quote.from_state(state) for symbol, state in row[1].items()}, row[2])


def liquidity_of_instruments(instruments: list[Instrument]) -> dict[str, SymbolLiquidity]:
    """Each instrument's liquidity settings; one whose settings are invalid (an edit outside the admin's
    validation) is left out, so it trades with the defaults instead of stopping the feed."""
    liquidity: dict[str, SymbolLiquidity] = {}
    for i in instruments:
        try:
            params = LiquidityParams(
                spread_bps=i.spread_bps,
                depth_levels=i.book_levels,
                top_size=i.book_top_size,
                depth_decay=i.book_decay,
                level_gap_ticks=i.book_level_gap_ticks,
                lot_size=i.lot_size,
            )
        except ValueError:
            logger.warning("%s: invalid liquidity settings; its book uses the defaults", i.symbol)
            continue
        liquidity[i.symbol] = SymbolLiquidity(tick_size=i.tick_size, params=params)
    return liquidity


def feed_quotes(feed: FeedSnapshot, profile: ProfileName) -> dict[str, dict[str, Any]]:
    """The `symbols` of a snapshot: each last price with `profile`'s top of book at that tick."""
    if not feed.quotes or feed.seed is None or feed.seq < 1:
        return {symbol: quote.to_wire() for symbol, quote in feed.quotes.items()}
    liquidity = liquidity_of_instruments(active_instruments())
    tops = tops_of(feed.quotes, liquidity, seed=feed.seed, seq=feed.seq, profile=profile)
    return {symbol: quote.to_wire() | tops.get(symbol, {}) for symbol, quote in feed.quotes.items()}


def candles_of(*, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
    """Closed bars of `symbol` and `interval` opening in [start_ms, end_ms), the newest `limit`, oldest first."""
    query = Candle.objects.filter(symbol=symbol, interval=interval)
    if start_ms is not None:
        query = query.filter(start_ms__gte=start_ms)
    if end_ms is not None:
        query = query.filter(start_ms__lt=end_ms)
    return list(reversed(query.order_by("-start_ms")[:limit]))


def feed_seed() -> int:
    return MarketFeed.objects.filter(pk=1).values_list("seed", flat=True).first() or 0


def orders_of_user(user_id: int) -> QuerySet[Order]:
    """Every account's: a `clientOrderId` is the user's key, whichever account the order went to."""
    return Order.objects.filter(user_id=user_id).select_related("instrument")


def orders_of_account(account_id: int) -> QuerySet[Order]:
    return Order.objects.filter(account_id=account_id).select_related("instrument")


def _instrument_besides(*names: str) -> list[str]:
    """The instrument's columns but `names` (and its id), for `defer` on a query that follows the order's
    or position's instrument: of an instrument, most reads need only the symbol."""
    return [
        f"instrument__{field.name}" for field in Instrument._meta.concrete_fields if field.name not in ("id", *names)
    ]


# What a margin account's figures read of an instrument besides its symbol.
MARGIN_COLUMNS = ("shortable", "initial_margin", "maintenance_margin_long", "maintenance_margin_short", "borrow_rate")
_INSTRUMENT_BESIDES_SYMBOL = _instrument_besides("symbol", *MARGIN_COLUMNS)


_INSTRUMENT_BESIDES_SYMBOL_AND_START = _instrument_besides("symbol", "start_price", *MARGIN_COLUMNS)


# The open orders' rows by version (market_app.order_versions): the worker reads them after every fill.
# About 3.5 KB a row kept (tracemalloc): at most some 17 MB a process; a worker whose users hold more
# open orders than this reads some rows again at each lease renewal, as it did before they were kept.
OPEN_ORDERS_KEPT = 5_000
_open_orders: KeptByVersion[Order] = KeptByVersion(OPEN_ORDERS_KEPT)


def open_orders_of_users(user_ids: list[int]) -> list[Order]:
    """Oldest first, with their instruments' symbols and start prices only (`reserved_by_orders` values a
    buy without a quote at it). Kept by version and shared: read them, never save one."""
    versions = (
        Order.objects.filter(user_id__in=user_ids, status__in=OPEN_ORDER_STATUSES)
        .order_by("created_at")
        .values_list("id", "updated_at")
    )
    return _open_orders.of(versions, _read_open_orders)


def _read_open_orders(order_ids: list[uuid.UUID]) -> Read[Order]:
    rows = (
        Order.objects.filter(pk__in=order_ids, status__in=OPEN_ORDER_STATUSES)
        .select_related("instrument")
        .defer(*_INSTRUMENT_BESIDES_SYMBOL_AND_START)
    )
    return {order.id: ((order.id, order.updated_at), order) for order in rows}


def recent_closed_order_versions(account_id: int) -> list[tuple[uuid.UUID, datetime]]:
    """The closed orders a snapshot lists besides the open ones, the most recent first: each one's id
    and `updated_at` (its version; market_app.snapshots keeps the views it built by version)."""
    closed = Order.objects.filter(account_id=account_id).exclude(status__in=OPEN_ORDER_STATUSES)
    return list(closed.values_list("id", "updated_at")[:RECENT_CLOSED_ORDERS])


def orders_to_show(order_ids: list[uuid.UUID]) -> list[Order]:
    """Orders with only their instruments' symbols read (50 instruments' other columns cost a snapshot
    a tenth of its time)."""
    return list(Order.objects.filter(pk__in=order_ids).select_related("instrument").defer(*_INSTRUMENT_BESIDES_SYMBOL))


def positions_of_account(account_id: int) -> list[Position]:
    return list(
        Position.objects.filter(account_id=account_id).select_related("instrument").defer(*_INSTRUMENT_BESIDES_SYMBOL)
    )


def fills_of_account(account_id: int) -> QuerySet[Fill]:
    return Fill.objects.filter(account_id=account_id).select_related("instrument")


def account_of_user(user_id: int) -> Account | None:
    """The user's current account (models.Account): None until they first trade or make one."""
    return one_or_none(Account.objects.filter(user_id=user_id, is_current=True))


def accounts_of_user(user_id: int, *, closed: bool = False) -> list[Account]:
    """The user's open accounts (and closed ones with `closed`), oldest first."""
    accounts = Account.objects.filter(user_id=user_id)
    return list(accounts if closed else accounts.filter(closed_at__isnull=True))


def account_chosen(*, user_id: int, account_id: int) -> Account:
    """The user's account `account_id`, closed ones too (their history stays readable);
    `unknown_account` for an id that is not theirs."""
    account = one_or_none(Account.objects.filter(pk=account_id, user_id=user_id))
    if account is None:
        raise ProtocolError(AccountCode.UNKNOWN_ACCOUNT, f"you have no account {account_id}")
    return account


def risk_caps() -> risk.Limits:
    """The operator's caps on every account's risk limits (the RISK_*_CAP settings)."""
    return risk.Limits(
        max_order_value=settings.RISK_MAX_ORDER_VALUE_CAP,
        max_position_value=settings.RISK_MAX_POSITION_VALUE_CAP,
        max_open_orders=settings.RISK_MAX_OPEN_ORDERS_CAP,
        max_leverage=settings.RISK_MAX_LEVERAGE_CAP,
        daily_loss_limit=settings.RISK_DAILY_LOSS_LIMIT_CAP,
    )


def risk_limits_of(account: Account) -> risk.Limits:
    """The limits the account's user set (not yet held to the caps)."""
    return risk.Limits(**{name: getattr(account, name) for name in risk.NAMES})


def feed_day(seq: int) -> str:
    """The shared feed's market day of tick `seq` (MARKET_DAY_TICKS ticks a day), as a daily loss limit counts it."""
    return f"feed:{seq // settings.MARKET_DAY_TICKS}"


def bar_day(simulator_id: uuid.UUID, time_ms: int) -> str:
    """The market day of a bar of a simulator's own market (the bar's UTC date), as a daily loss limit
    counts it: a day of one replay only, not the same date replayed by another simulator."""
    return f"bars:{simulator_id.hex}:{datetime.fromtimestamp(time_ms / 1000, UTC).date().isoformat()}"


def daily_loss_accounts(user_ids: Iterable[int]) -> QuerySet[Account]:
    """The current accounts of these users with a daily loss limit to watch (their own, or the operator's
    cap for all): the accounts their simulators trade."""
    accounts = Account.objects.filter(user_id__in=user_ids, is_current=True)
    if risk_caps().daily_loss_limit is None:
        accounts = accounts.filter(daily_loss_limit__isnull=False)
    return accounts


def daily_loss_watched(user_ids: list[int]) -> set[int]:
    """The users of `daily_loss_accounts`."""
    return set(daily_loss_accounts(user_ids).values_list("user_id", flat=True))


def margin_accounts(user_ids: Iterable[int]) -> QuerySet[Account]:
    """The margin accounts these users trade now (their margin calls and charges are watched)."""
    return Account.objects.filter(user_id__in=user_ids, is_current=True, account_type=AccountType.MARGIN)


def margin_traders(user_ids: Iterable[int]) -> set[int]:
    """The users of `margin_accounts`."""
    return set(margin_accounts(user_ids).values_list("user_id", flat=True))


def reserved_by_open_orders(user_id: int, quotes: dict[str, Quote]) -> tuple[Decimal, dict[str, Decimal]]:
    return reserved_by_orders(open_orders_of_users([user_id]), quotes)


def reserved_by_orders(open_orders: Iterable[Order], quotes: dict[str, Quote]) -> tuple[Decimal, dict[str, Decimal]]:
    """Cash held back by open buys (at their limit, stop, or the last price) and quantity held by open
    sells. The legs of an OCO group hold what their largest leg holds: only one of them can fill."""
    cash, quantity = reserved_by_symbol(open_orders, quotes)
    return sum(cash.values(), Decimal(0)), quantity


def reserved_by_symbol(
    open_orders: Iterable[Order], quotes: dict[str, Quote]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """`reserved_by_orders`, the cash by symbol too."""
    cash: dict[str, Decimal] = {}
    quantity: dict[str, Decimal] = {}
    groups: dict[object, tuple[str, Decimal]] = {}
    for order in open_orders:
        symbol = order.instrument.symbol
        if order.side == OrderSide.BUY:
            last = quotes[symbol].price if symbol in quotes else order.instrument.start_price
            price = order.limit_price or (max(order.stop_price, last) if order.stop_price else last)
            cash[symbol] = cash.get(symbol, Decimal(0)) + order.remaining * price
        elif order.oco_group is not None:
            held = groups.get(order.oco_group, (symbol, Decimal(0)))[1]
            groups[order.oco_group] = (symbol, max(held, order.remaining))
        else:
            quantity[symbol] = quantity.get(symbol, Decimal(0)) + order.remaining
    for symbol, held in groups.values():
        quantity[symbol] = quantity.get(symbol, Decimal(0)) + held
    return cash, quantity


# --- Margin accounts (market_app.margin) ------------------------------------------------------------


def margin_rates_of(instrument: Instrument) -> margin.Rates:
    def rate(own: Decimal | None, default: Decimal) -> Decimal:
        return default if own is None else own

    return margin.Rates(
        initial=rate(instrument.initial_margin, settings.MARKET_INITIAL_MARGIN),
        maintenance_long=rate(instrument.maintenance_margin_long, settings.MARKET_MAINTENANCE_MARGIN_LONG),
        maintenance_short=rate(instrument.maintenance_margin_short, settings.MARKET_MAINTENANCE_MARGIN_SHORT),
    )


def position_price(position: Position, quotes: Mapping[str, Quote]) -> Decimal:
    """What a position is valued at: the last price, else (its symbol out of these quotes) its average."""
    quote = quotes.get(position.instrument.symbol)
    return quote.price if quote is not None else position.average_price


def margin_holding(position: Position, quotes: Mapping[str, Quote]) -> margin.Holding:
    return margin.Holding(position.quantity, position_price(position, quotes), margin_rates_of(position.instrument))


def order_price(order: Order, quotes: Mapping[str, Quote]) -> Decimal:
    """What an open order is valued at: its limit, else its stop, else the last price."""
    symbol = order.instrument.symbol
    last = quotes[symbol].price if symbol in quotes else order.instrument.start_price
    return order.limit_price or order.stop_price or last


def held_after_open_orders(
    positions: Iterable[Position], open_orders: Iterable[Order], *, side: str
) -> dict[str, Decimal]:
    """Each symbol's signed position as a new order on `side` meets it: the open orders on that side go first."""
    held = {p.instrument.symbol: p.quantity for p in positions}
    for order in open_orders:
        if order.side == side:
            step = order.remaining if side == OrderSide.BUY else -order.remaining
            held[order.instrument.symbol] = held.get(order.instrument.symbol, Decimal(0)) + step
    return held


def margin_figures(
    *, cash: Decimal, positions: list[Position], open_orders: list[Order], quotes: Mapping[str, Quote]
) -> margin.Figures:
    """A margin account's equity, requirements and buying power at these prices (market_app.margin)."""
    held = {p.instrument.symbol: p.quantity for p in positions}
    holdings = [margin_holding(p, quotes) for p in positions if p.quantity]
    openings = [
        margin.Opening(
            margin.opening_quantity(side=o.side, quantity=o.remaining, held=held.get(o.instrument.symbol, Decimal(0))),
            order_price(o, quotes),
            margin_rates_of(o.instrument),
        )
        for o in open_orders
    ]
    return margin.figures(
        cash=cash, holdings=holdings, openings=openings, default_initial=settings.MARKET_INITIAL_MARGIN
    )


# --- A simulator's own market -------------------------------------------------------------------


def own_market_symbols(*, user_id: int) -> list[str] | None:
    """The symbols of the user's live simulator's own market (None: it trades on the shared feed)."""
    simulator = live_simulator_of_user(user_id=user_id)
    if simulator is None or not simulator.own_market:
        return None
    symbols = simulator.market.get("symbols")
    return list(symbols) if symbols else [i.symbol for i in active_instruments()]


def own_market_quotes(simulator: Simulator) -> dict[str, Quote]:
    """Its own market's prices at the worker's last checkpoint (market_app.own_market)."""
    quotes = simulator.state.get("ownMarket", {}).get("quotes", {})
    return {symbol: Quote.from_state(state) for symbol, state in quotes.items()}


def own_market_time_ms(simulator: Simulator) -> int | None:
    """The time of the bar its own market showed at the worker's last checkpoint (None before the first)."""
    time_ms = simulator.state.get("clock", {}).get("timeMs")
    return None if time_ms is None else int(time_ms)
