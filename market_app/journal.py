"""Reads behind the account's journal (docs/protocol.md §4c): a time window, the account's epochs
(a reset starts a new one), and the account's orders, fills and equity samples in a window, a page at a
time in a stable order so a large range streams without holding it in memory."""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import F, Q, QuerySet
from django.db.models import Window as SqlWindow
from django.db.models.functions import RowNumber
from django.utils import timezone

from market_app.messages import AccountResetView
from market_app.models import AccountCharge, AccountReset, EquitySample, Fill, Order
from sessions_app.realtime.message_base import epoch_ms

PAGE_SIZE = 1_000
# Columns of the CSV exports, in this order; new columns are only ever added at the end.
ORDER_COLUMNS = (
    "order_id",
    "created_at",
    "updated_at",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "limit_price",
    "status",
    "filled_qty",
    "average_price",
    "client_order_id",
    "reason",
    "epoch",
    "simulator_id",
    "market",
    "liquidation",
)
FILL_COLUMNS = (
    "fill_id",
    "order_id",
    "created_at",
    "tick_seq",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "notional",
    "epoch",
    "market_at",
)
EQUITY_COLUMNS = ("at", "tick_seq", "equity", "cash", "positions_value", "epoch")


@dataclass(frozen=True)
class Window:
    """[start, end): start None is the beginning of the account's history."""

    start: datetime | None
    end: datetime

    def contains(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and at < self.end


@dataclass(frozen=True)
class Epochs:
    """The times of an account's resets, in order: epoch n runs from the n-th reset (0 from the start)."""

    reset_times: tuple[datetime, ...]

    def of(self, at: datetime) -> int:
        return bisect.bisect_right(self.reset_times, at)

    def start_of(self, epoch: int) -> datetime | None:
        return self.reset_times[epoch - 1] if epoch > 0 else None

    @property
    def current(self) -> int:
        return len(self.reset_times)


def account_epochs(*, account_id: int) -> Epochs:
    times = AccountReset.objects.filter(account_id=account_id).order_by("at", "id").values_list("at", flat=True)
    return Epochs(tuple(times))


def resets_of_account(*, account_id: int, window: Window | None = None) -> list[AccountReset]:
    resets = AccountReset.objects.filter(account_id=account_id).order_by("at", "id")
    if window is not None:
        resets = resets.filter(_in_window("at", window))
    return list(resets)


def default_window(*, account_id: int, start: datetime | None, end: datetime | None) -> Window:
    """A window whose missing end is now, and missing start the start of the epoch its end falls in
    (the last reset before it: with no `to`, the current epoch)."""
    end = end or timezone.now()
    if start is None:
        resets = AccountReset.objects.filter(account_id=account_id, at__lt=end)
        start = resets.order_by("-at").values_list("at", flat=True).first()
    return Window(start, end)


def _in_window(field: str, window: Window) -> Q:
    query = Q(**{f"{field}__lt": window.end})
    if window.start is not None:
        query &= Q(**{f"{field}__gte": window.start})
    return query


def _after(cursor: tuple[datetime, object] | None, field: str = "created_at") -> Q:
    if cursor is None:
        return Q()
    at, pk = cursor
    return Q(**{f"{field}__gt": at}) | Q(**{field: at, "pk__gt": pk})


# --- Pages (keyset: created_at, then the primary key) ----------------------------------------


def journal_orders_page(
    *, account_id: int, window: Window, after: tuple[datetime, uuid.UUID] | None = None, limit: int | None = None
) -> list[Order]:
    return list(
        Order.objects.filter(_in_window("created_at", window), _after(after), account_id=account_id)
        .select_related("instrument", "simulator")
        .order_by("created_at", "id")[: limit or PAGE_SIZE]
    )


def journal_fills_page(
    *, account_id: int, window: Window, after: tuple[datetime, uuid.UUID] | None = None, limit: int | None = None
) -> list[Fill]:
    return list(
        Fill.objects.filter(_in_window("created_at", window), _after(after), account_id=account_id)
        .select_related("instrument")
        .order_by("created_at", "id")[: limit or PAGE_SIZE]
    )


def equity_samples_page(
    *, account_id: int, window: Window, after: tuple[datetime, int] | None = None, limit: int | None = None
) -> list[EquitySample]:
    return list(
        EquitySample.objects.filter(_in_window("at", window), _after(after, "at"), account_id=account_id).order_by(
            "at", "id"
        )[: limit or PAGE_SIZE]
    )


def journal_charges_page(
    *, account_id: int, window: Window, after: tuple[datetime, int] | None = None, limit: int | None = None
) -> list[AccountCharge]:
    return list(
        AccountCharge.objects.filter(_in_window("at", window), _after(after, "at"), account_id=account_id).order_by(
            "at", "id"
        )[: limit or PAGE_SIZE]
    )


def equity_samples_in(*, account_id: int, window: Window) -> QuerySet[EquitySample]:
    return EquitySample.objects.filter(_in_window("at", window), account_id=account_id).order_by("at", "id")


def equity_curve(*, account_id: int, window: Window, points: int) -> list[EquitySample]:
    """At most `points` (2 or more) samples of the window, evenly spread, always with its first and last."""
    samples = equity_samples_in(account_id=account_id, window=window)
    count = samples.count()
    if count <= points:
        return list(samples)
    wanted = sorted({1 + round(i * (count - 1) / (points - 1)) for i in range(points)})
    # Numbered in the database, so only the chosen rows leave it.
    numbered = samples.annotate(row=SqlWindow(RowNumber(), order_by=[F("at").asc(), F("id").asc()]))
    return list(numbered.filter(row__in=wanted).order_by("at", "id"))


# --- How a row reads in a CSV -------------------------------------------------------------------


def iso(at: datetime) -> str:
    """UTC, millisecond precision, with a Z: 2026-12-01T17:03:46.123Z."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Decimal | None) -> str:
    """A decimal as CSV shows it: no exponent, no trailing zeros (190.5, not 190.50000000)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def order_row(order: Order, epochs: Epochs) -> list[str]:
    return [
        str(order.id),
        iso(order.created_at),
        iso(order.updated_at),
        order.instrument.symbol,
        order.side,
        order.order_type,
        plain(order.quantity),
        plain(order.limit_price),
        order.status,
        plain(order.filled_qty),
        plain(order.average_price),
        order.client_order_id,
        order.reason,
        str(epochs.of(order.created_at)),
        str(order.simulator_id or ""),
        order_market(order),
        "true" if order.liquidation else "false",
    ]


def order_market(order: Order) -> str:
    """Where the order's simulator took its prices: `shared`, `replay` or `synthetic`."""
    return order.simulator.market_source if order.simulator is not None else "shared"


def fill_notional(fill: Fill) -> Decimal:
    return (fill.quantity * fill.price).quantize(Decimal("0.00000001"))


def fill_row(fill: Fill, epochs: Epochs) -> list[str]:
    return [
        str(fill.id),
        str(fill.order_id),
        iso(fill.created_at),
        str(fill.tick_seq),
        fill.instrument.symbol,
        fill.side,
        plain(fill.quantity),
        plain(fill.price),
        plain(fill.fee),
        plain(fill_notional(fill)),
        str(epochs.of(fill.created_at)),
        iso(fill.market_at) if fill.market_at else "",
    ]


def equity_row(sample: EquitySample, epochs: Epochs) -> list[str]:
    return [
        iso(sample.at),
        str(sample.tick_seq),
        plain(sample.equity),
        plain(sample.cash),
        plain(sample.positions_value),
        str(epochs.of(sample.at)),
    ]


# --- The figures and a reset as the API shows them ----------------------------------------------

CHARGE_COLUMNS = ("at", "day", "kind", "amount", "details", "epoch")
PERFORMANCE_COLUMNS = (
    "start",
    "end",
    "epoch",
    "resets",
    "orders",
    "fills",
    "realized_pnl",
    "unrealized_pnl",
    "fees",
    "net_pnl",
    "round_trips",
    "round_trips_won",
    "win_rate",
    "max_drawdown",
    "max_drawdown_ratio",
    "equity_samples",
    "first_equity",
    "last_equity",
    "charges",
)


def charge_row(charge: AccountCharge, epochs: Epochs) -> list[str]:
    details = ";".join(f"{name}={value}" for name, value in sorted(charge.details.items()))
    return [iso(charge.at), charge.day, charge.kind, plain(charge.amount), details, str(epochs.of(charge.at))]


def reset_view(reset: AccountReset, epochs: Epochs) -> AccountResetView:
    return AccountResetView(
        resetId=reset.pk,
        at=epoch_ms(reset.at),
        epoch=epochs.of(reset.at),
        byOperator=reset.by_operator,
        startingCash=float(reset.starting_cash),
        cashBefore=float(reset.cash_before),
        positionsValueBefore=float(reset.positions_value_before),
        equityBefore=float(reset.equity_before),
        realizedPnlBefore=float(reset.realized_pnl_before),
        ordersCanceled=reset.orders_canceled,
        positionsCleared=len(reset.positions_before),
    )
