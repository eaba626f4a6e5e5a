from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from market_app import datasets, journal, performance, services
from market_app.models import (
    Account,
    AccountReset,
    Candle,
    Dataset,
    Fill,
    Instrument,
    MarketFeed,
    Order,
    Position,
)
from sessions_app.realtime.errors import ProtocolError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Trading records change only through the services (orders, fills, cash stay consistent)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "name",
        "tick_size",
        "start_price",
        "volatility",
        "drift",
        "base_volume",
        "shortable",
        "is_active",
    )
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
        (
            "Margin accounts (empty: the MARKET_INITIAL_MARGIN and MARKET_MAINTENANCE_MARGIN_* settings)",
            {"fields": ("shortable", "initial_margin", "maintenance_margin_long", "maintenance_margin_short")},
        ),
    )


@admin.register(MarketFeed)
class MarketFeedAdmin(ReadOnlyAdmin):
    list_display = ("id", "seq", "seed", "worker", "produced_at", "lease_expires_at")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Only the profile, the commission schedule and the risk limits are edited here (empty: the MARKET_COMMISSION_*
    settings; no limit, though the RISK_*_CAP caps hold every account); the cash moves only through
    the services."""

    list_display = (
        "user",
        "name",
        "account_type",
        "is_default",
        "is_current",
        "closed_at",
        "cash",
        "starting_cash",
        "fees_paid",
        "profile",
        "commission_per_share",
        "commission_bps",
    )
    list_filter = ("account_type", "is_default", "is_current", ("closed_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    fields = (
        "user",
        "name",
        "account_type",
        "is_default",
        "is_current",
        "closed_at",
        "profile",
        "cash",
        "starting_cash",
        "fees_paid",
        "commission_per_share",
        "commission_minimum",
        "commission_bps",
        "max_order_value",
        "max_position_value",
        "max_open_orders",
        "max_leverage",
        "daily_loss_limit",
        "loss_day",
        "loss_day_start_equity",
        "loss_halted_day",
        "created_at",
        "updated_at",
        "figures",
    )
    readonly_fields = (
        "user",
        "name",
        "account_type",
        "is_default",
        "is_current",
        "closed_at",
        "cash",
        "starting_cash",
        "fees_paid",
        "loss_day",
        "loss_day_start_equity",
        "loss_halted_day",
        "created_at",
        "updated_at",
        "figures",
    )

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
        return orders_csv(Order.objects.filter(account__in=queryset))

    @admin.action(description="Export the fills of the selected accounts (CSV)")
    def export_fills(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse:
        return fills_csv(Fill.objects.filter(account__in=queryset))


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
    window = journal.default_window(account_id=account.pk, start=None, end=None)
    figures = performance.account_performance(account_id=account.pk, window=window)
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
        if item.account_id not in epochs:
            epochs[item.account_id] = journal.account_epochs(account_id=item.account_id)
        yield [item.user.get_username(), item.account.name, *row(item, epochs[item.account_id])]


def orders_csv(orders: QuerySet[Order]) -> HttpResponse:
    ordered = orders.select_related("user", "account", "instrument").order_by(
        "user_id", "account_id", "created_at", "id"
    )
    return _csv("orders", ("user", "account", *journal.ORDER_COLUMNS), _rows(ordered.iterator(), journal.order_row))


def fills_csv(fills: QuerySet[Fill]) -> HttpResponse:
    ordered = fills.select_related("user", "account", "instrument").order_by(
        "user_id", "account_id", "created_at", "id"
    )
    return _csv("fills", ("user", "account", *journal.FILL_COLUMNS), _rows(ordered.iterator(), journal.fill_row))


def reset_accounts(model_admin: admin.ModelAdmin, request: HttpRequest, accounts: QuerySet[Account]) -> None:
    """The same service as the user's reset; an account whose simulator is live is left alone and named."""
    done, refused = 0, []
    for account in accounts.select_related("user"):
        try:
            services.account_reset(user_id=account.user_id, account_id=account.pk, by_operator=True)
            done += 1
        except ProtocolError as error:
            refused.append(f"{account} ({error.message})")
    if done:
        model_admin.message_user(request, f"{done} account(s) reset to their starting cash.", messages.SUCCESS)
    if refused:
        model_admin.message_user(request, "Not reset: " + "; ".join(refused), messages.ERROR)


class DatasetAddForm(forms.ModelForm):
    """An operator's dataset: a CSV of bars (docs/datasets.md), checked whole before it is stored."""

    file = forms.FileField(help_text="A CSV of bars: timestamp,symbol,open,high,low,close,volume (docs/datasets.md).")

    class Meta:
        model = Dataset
        fields = ("name", "shared", "source")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        if upload.size > settings.DATASET_MAX_BYTES:
            raise forms.ValidationError(f"A bar file is at most {settings.DATASET_MAX_BYTES} bytes.")
        try:
            content = datasets.bar_file(upload.read())
            bars = datasets.parse_dataset(content, name=cleaned.get("name") or upload.name)
        except ProtocolError as error:
            raise forms.ValidationError(error.message) from None
        cleaned["bars"] = bars  # checked here, stored by save_model: the file is parsed once
        return cleaned


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    """Operators upload datasets every user may replay (shared) and share or unshare users' ones."""

    list_display = ("name", "owner", "shared", "bar_count", "first_at", "last_at", "created_at")
    list_editable = ("shared",)
    list_filter = ("shared",)
    search_fields = ("name", "owner__username")
    readonly_fields = ("owner", "bar_count", "first_at", "last_at", "symbol_ranges", "created_at")

    def get_form(self, request: HttpRequest, obj: Dataset | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = DatasetAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Dataset | None = None) -> Any:
        if obj is None:
            return ("name", "shared", "source", "file")
        return ("name", "owner", "shared", "source", "bar_count", "first_at", "last_at", "symbol_ranges", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Dataset | None = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="symbols")
    def symbol_ranges(self, obj: Dataset) -> str:
        return ", ".join(f"{s['symbol']} ({s['bars']} bars)" for s in obj.symbols)

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        stored = datasets.dataset_store(
            owner_id=None,
            name=form.cleaned_data["name"],
            bars=form.cleaned_data["bars"],
            shared=form.cleaned_data["shared"],
            source=form.cleaned_data["source"],
        )
        obj.pk = stored.pk  # the admin's redirect and message name the stored one
