"""The admin's part of the account journal: the figures on an Account's page, the CSV exports of
orders and fills (the REST journal's columns, after a `user` column), and the reset action."""

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
from market_app.models import Account, Fill, Order
from sessions_app.realtime import ProtocolError


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
