"""The account's performance over a window, computed from the database (a selector): the REST
figures, their CSV, the admin's Account page and the console all show this one computation.

Definitions (docs/protocol.md §4c):

- **Realized profit**: the fills are replayed in order (created_at, tick, id) with the exchange's own
  average-cost accounting (market_app.accounting.apply_fill), from the start of the epoch the window
  begins in (positions are flat then); the realized profit of the window's fills is summed. It is
  net of fees, as the positions' own (a fill's fee counts against it when paid, buy or sell), so
  `netPnl` is realized + unrealized; `fees` shows what they took.
- **Unrealized profit**: the positions held at the window's end, at the feed's last prices
  ((last - average cost) * quantity). A position cleared by a reset before the end is not held.
- **Fees**: the sum of `Fill.fee` of the window's fills.
- **Round trip**: one instrument's position going from flat to flat. Partial closes do not count
  apart: they add their profit to the trip, which counts once, in the window it closes in; a trip
  still open, or cleared by a reset, is not one. It is **won** when its realized profit (net of the
  fees of its fills) is above zero; `winRate` is won / round trips (absent without round trips).
- **Max drawdown**: over the window's equity samples in time order, the largest fall from the
  highest equity seen before (peak - equity), in money (`maxDrawdown`) and, separately, the largest
  such fall relative to its peak (`maxDrawdownRatio`, 0.25 = 25 %). The peak starts afresh at each reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from market_app import selectors
from market_app.accounting import PositionState, apply_fill, quantize
from market_app.http_messages import AccountPerformance
from market_app.journal import Epochs, Window, account_epochs, iso, plain
from market_app.models import Account, AccountCharge, AccountType, EquitySample, Fill, Order, OrderSide
from sessions_app.realtime.message_base import epoch_ms

ZERO = Decimal(0)


@dataclass
class Performance:
    start: datetime | None
    end: datetime
    epoch: int  # the account's epoch at the window's end
    resets: int  # resets inside the window
    orders: int
    fills: int
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    round_trips: int = 0
    won: int = 0
    max_drawdown: Decimal = ZERO
    max_drawdown_ratio: Decimal = ZERO
    samples: int = 0
    first_equity: Decimal | None = None
    last_equity: Decimal | None = None
    charges: Decimal = ZERO  # a margin account's borrow fees and margin interest

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl - self.charges

    @property
    def win_rate(self) -> Decimal | None:
        if not self.round_trips:
            return None
        return quantize(Decimal(self.won) / Decimal(self.round_trips))


@dataclass
class _Holding:
    state: PositionState = field(default_factory=PositionState)
    trip_pnl: Decimal = ZERO


def account_performance(*, account_id: int, window: Window) -> Performance:
    epochs = account_epochs(account_id=account_id)
    replay_from = epochs.start_of(epochs.of(window.start)) if window.start is not None else None
    performance = Performance(
        start=window.start,
        end=window.end,
        epoch=epochs.of(window.end),
        resets=sum(1 for at in epochs.reset_times if window.contains(at)),
        orders=_orders_in(account_id, window),
        fills=0,
    )
    short = Account.objects.filter(pk=account_id, account_type=AccountType.MARGIN).exists()
    holdings = _replay_fills(account_id, window, replay_from, epochs, performance, short=short)
    quotes = selectors.feed_snapshot().quotes
    for symbol, holding in holdings.items():
        if holding.state.quantity != 0 and symbol in quotes:  # a short's too: its quantity is below zero
            performance.unrealized_pnl += quantize(
                (quotes[symbol].price - holding.state.average_price) * holding.state.quantity
            )
    _drawdown(account_id, window, epochs, performance)
    charges = AccountCharge.objects.filter(account_id=account_id, at__lt=window.end)
    if window.start is not None:
        charges = charges.filter(at__gte=window.start)
    performance.charges = charges.aggregate(total=Sum("amount"))["total"] or ZERO
    return performance


def _orders_in(account_id: int, window: Window) -> int:
    orders = Order.objects.filter(account_id=account_id, created_at__lt=window.end)
    if window.start is not None:
        orders = orders.filter(created_at__gte=window.start)
    return orders.count()


def _replay_fills(
    account_id: int,
    window: Window,
    replay_from: datetime | None,
    epochs: Epochs,
    performance: Performance,
    *,
    short: bool,
) -> dict[str, _Holding]:
    """The fills replayed as the account took them (`short`: a margin account's, which may sell short)."""
    fills = Fill.objects.filter(account_id=account_id, created_at__lt=window.end)
    if replay_from is not None:
        fills = fills.filter(created_at__gte=replay_from)
    rows = fills.order_by("created_at", "tick_seq", "id").values_list(
        "created_at", "instrument__symbol", "side", "quantity", "price", "fee"
    )
    holdings: dict[str, _Holding] = {}
    epoch = epochs.of(replay_from) if replay_from is not None else 0
    for at, symbol, side, quantity, price, fee in rows.iterator(chunk_size=2_000):
        if epochs.of(at) != epoch:  # a reset in between: every position was cleared
            epoch = epochs.of(at)
            holdings = {}
        holding = holdings.setdefault(symbol, _Holding())
        inside = window.contains(at)
        if holding.state.quantity == 0:
            holding.trip_pnl = ZERO
        effect = apply_fill(
            holding.state,
            side=side,
            quantity=min(quantity, holding.state.quantity) if side == OrderSide.SELL and not short else quantity,
            price=price,
            fee=fee,
            short=short,
        )
        before = holding.state.quantity
        realized = effect.position.realized_pnl - holding.state.realized_pnl
        holding.state = effect.position
        holding.trip_pnl += realized
        if inside:
            performance.fills += 1
            performance.realized_pnl += realized
            performance.fees += fee
        # A trip ends when the position is flat again, or crosses to the other side (a long sold into a short).
        if before != 0 and (effect.position.quantity == 0 or before * effect.position.quantity < 0) and inside:
            performance.round_trips += 1
            performance.won += holding.trip_pnl > 0
    if epochs.of(window.end) != epoch:
        return {}  # reset after the last fill, before the window's end
    return holdings


def _drawdown(account_id: int, window: Window, epochs: Epochs, performance: Performance) -> None:
    samples = EquitySample.objects.filter(account_id=account_id, at__lt=window.end)
    if window.start is not None:
        samples = samples.filter(at__gte=window.start)
    peak: Decimal | None = None
    epoch = -1
    for at, equity in samples.order_by("at", "id").values_list("at", "equity").iterator(chunk_size=2_000):
        if performance.first_equity is None:
            performance.first_equity = equity
        performance.last_equity = equity
        performance.samples += 1
        if epochs.of(at) != epoch:
            epoch, peak = epochs.of(at), equity
        assert peak is not None
        peak = max(peak, equity)
        fall = peak - equity
        performance.max_drawdown = max(performance.max_drawdown, fall)
        if peak > 0:
            performance.max_drawdown_ratio = max(performance.max_drawdown_ratio, quantize(fall / peak))


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def performance_view(performance: Performance) -> AccountPerformance:
    return AccountPerformance(
        start=None if performance.start is None else epoch_ms(performance.start),
        end=epoch_ms(performance.end),
        epoch=performance.epoch,
        resets=performance.resets,
        orders=performance.orders,
        fills=performance.fills,
        realizedPnl=float(performance.realized_pnl),
        unrealizedPnl=float(performance.unrealized_pnl),
        fees=float(performance.fees),
        netPnl=float(performance.net_pnl),
        roundTrips=performance.round_trips,
        roundTripsWon=performance.won,
        winRate=_number(performance.win_rate),
        maxDrawdown=float(performance.max_drawdown),
        maxDrawdownRatio=float(performance.max_drawdown_ratio),
        equitySamples=performance.samples,
        firstEquity=_number(performance.first_equity),
        lastEquity=_number(performance.last_equity),
        charges=float(performance.charges),
    )


def performance_row(performance: Performance) -> list[str]:
    """The CSV row, in PERFORMANCE_COLUMNS' order: the same values as performance_view's."""
    return [
        "" if performance.start is None else iso(performance.start),
        iso(performance.end),
        str(performance.epoch),
        str(performance.resets),
        str(performance.orders),
        str(performance.fills),
        plain(performance.realized_pnl),
        plain(performance.unrealized_pnl),
        plain(performance.fees),
        plain(performance.net_pnl),
        str(performance.round_trips),
        str(performance.won),
        plain(performance.win_rate),
        plain(performance.max_drawdown),
        plain(performance.max_drawdown_ratio),
        str(performance.samples),
        plain(performance.first_equity),
        plain(performance.last_equity),
        plain(performance.charges),
    ]
