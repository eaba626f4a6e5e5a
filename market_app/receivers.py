"""What the market does when the apps below it tell it something, and what it adds to the
operator's counts."""

from __future__ import annotations

from market_app import services
from market_app.models import OPEN_ORDER_STATUSES, Order


def cancel_orders_of_ended_simulator(
    sender: object, *, user_id: int, status: str, reason: str, **kwargs: object
) -> None:
    """simulator_app.signals.simulator_ended: nothing matches orders without a running simulator,
    so end them rather than leave them hanging (in the simulator's transaction)."""
    services.orders_cancel_open(user_id=user_id, reason=f"simulator {status}: {reason}")


def service_counts() -> dict[str, object]:
    return {"openOrders": Order.objects.filter(status__in=OPEN_ORDER_STATUSES).count()}
