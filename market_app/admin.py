from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from market_app import journal, performance, services
from market_app.models import Account, AccountReset, Candle, Fill, Instrument, MarketFeed, Order, Position
from sessions_app.realtime.errors import ProtocolError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Trading records change only through the services (orders, fills, cash stay consistent)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "tick_size", "start_price", "volatility", "drift", "base_volume", "is_active")
    list_editable = ("is_active",)
    list_filter = ("is_active",)
    search_fields = ("symbol", "name")
    fieldsets = (
        (None, {"fields": ("symbol", "name", "is_active", "sort_order")}),
        ("Price process", {"fields": ("tick_size", "start_price", "volatility", "drift", "base_volume")}),
        (
            "Liquidity (bid/ask and book)",
            {
                "fields": (
                    "spread_bps",
                    "book_levels",
                    "book_top_size",
                    "book_decay",
                    "book_level_gap_ticks",
                    "lot_size",
                )
            },
        ),
    )


@admin.register(MarketFeed)
class MarketFeedAdmin(ReadOnlyAdmin):
    list_display = ("id", "seq", "seed", "worker", "produced_at", "lease_expires_at")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Only the commission schedule is edited here (empty: the MARKET_COMMISSION_* settings); the
    cash moves only through the services."""

    list_display = ("user", "cash", "starting_cash", "fees_paid", "commission_per_share", "commission_bps")
    search_fields = ("user__username",)
    fields = (
        "user",
        "cash",
        "starting_cash",
        "fees_paid",
        "commission_per_share",
        "commission_minimum",
        "commission_bps",
        "created_at",
        "updated_at",
        "figures",
    )
    readonly_fields = ("user", "cash", "starting_cash", "fees_paid", "created_at", "updated_at", "figures")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    actions = ("reset_accounts", "export_orders", "export_fills")

    @admin.display(description="Figures (current epoch)")
    def figures(self, account: Account) -> str:
        return account_figures_html(account)

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market_app.change_account")

    @admin.action(description="Reset selected accounts to their starting cash", permissions=["reset"])
    def reset_accounts(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        reset_accounts(self, request, queryset)

    @admin.action(description="Export the orders of the selected accounts (CSV)")
    def export_orders(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse:
        users = list(queryset.values_list("user_id", flat=True))
        return orders_csv(Order.objects.filter(user_id__in=users))

    @admin.action(description="Export the fills of the selected accounts (CSV)")
    def export_fills(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse:
        users = list(queryset.values_list("user_id", flat=True))
        return fills_csv(Fill.objects.filter(user_id__in=users))


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "instrument",
        "side",
        "order_type",
        "time_in_force",
        "order_class",
        "quantity",
        "limit_price",
        "stop_price",
        "status",
        "filled_qty",
        "fee",
    )
    list_filter = ("status", "side", "order_type", "time_in_force", "order_class", "instrument")
    search_fields = ("id", "user__username", "client_order_id")
    list_select_related = ("user", "instrument")
    actions = ("export_csv",)

    @admin.action(description="Export selected orders (CSV)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse:
        return orders_csv(queryset)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "instrument", "side", "quantity", "price", "fee", "tick_seq", "created_at")
    list_filter = ("side", "instrument")
    search_fields = ("order__id", "user__username")
    list_select_related = ("user", "instrument")
    actions = ("export_csv",)

    @admin.action(description="Export selected fills (CSV)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Fill]) -> HttpResponse:
        return fills_csv(queryset)


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ("user", "instrument", "quantity", "average_price", "realized_pnl", "updated_at")
    list_filter = ("instrument",)
    search_fields = ("user__username",)
    list_select_related = ("user", "instrument")


@admin.register(AccountReset)
class AccountResetAdmin(ReadOnlyAdmin):
    list_display = ("account", "at", "by_operator", "cash_before", "equity_before", "orders_canceled")
    list_filter = ("by_operator",)
    search_fields = ("account__user__username",)
    list_select_related = ("account__user",)


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "interval", "start_ms", "open", "high", "low", "close", "volume")
    list_filter = ("interval", "symbol")


def account_figures_html(account: Account) -> str:
    window = journal.default_window(user_id=account.user_id, start=None, end=None)
    figures = performance.account_performance(user_id=account.user_id, window=window)
    rows = zip(journal.PERFORMANCE_COLUMNS, performance.performance_row(figures), strict=True)
    return format_html(
        '<table class="account-figures">{}</table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((name, value or "-") for name, value in rows)),
    )


def _csv(filename: str, columns: Iterable[str], rows: Iterable[list[str]]) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _rows(items: Iterable[Any], row: Callable[[Any, journal.Epochs], list[str]]) -> Iterable[list[str]]:
    epochs: dict[int, journal.Epochs] = {}
    for item in items:
        if item.user_id not in epochs:
            epochs[item.user_id] = journal.account_epochs(user_id=item.user_id)
        yield [item.user.get_username(), *row(item, epochs[item.user_id])]


def orders_csv(orders: QuerySet[Order]) -> HttpResponse:
    ordered = orders.select_related("user", "instrument").order_by("user_id", "created_at", "id")
    return _csv("orders", ("user", *journal.ORDER_COLUMNS), _rows(ordered.iterator(), journal.order_row))


def fills_csv(fills: QuerySet[Fill]) -> HttpResponse:
    ordered = fills.select_related("user", "instrument").order_by("user_id", "created_at", "id")
    return _csv("fills", ("user", *journal.FILL_COLUMNS), _rows(ordered.iterator(), journal.fill_row))


def reset_accounts(model_admin: admin.ModelAdmin, request: HttpRequest, accounts: QuerySet[Account]) -> None:
    """The same service as the user's reset; an account whose simulator is live is left alone and named."""
    done, refused = 0, []
    for account in accounts.select_related("user"):
        try:
            services.account_reset(user_id=account.user_id, by_operator=True)
            done += 1
        except ProtocolError as error:
            refused.append(f"{account.user.get_username()} ({error.message})")
    if done:
        model_admin.message_user(request, f"{done} account(s) reset to their starting cash.", messages.SUCCESS)
    if refused:
        model_admin.message_user(request, "Not reset: " + "; ".join(refused), messages.ERROR)
