"""A read every app's selectors and services share."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def one_or_none(rows: QuerySet[M]) -> M | None:
    """The row of a lookup by a unique key, or None. Unlike `first()` it asks for no ordering: Django
    compiles an ORDER BY against every selected column, about a third of such a query's cost (the
    orders and fills of a lock-step backtest make dozens of these lookups)."""
    return next(iter(rows.order_by()[:1]), None)
