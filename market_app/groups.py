"""Channel-layer names of the market app."""

from __future__ import annotations


def ticks_group() -> str:
    """Every tick of the shared feed goes here once; connections whose simulator runs, and workers, follow it."""
    return "market.ticks"


def worker_orders_group(worker_id: str) -> str:
    """Hints that a user's open orders changed, for the market in the worker running the user's simulator."""
    return f"market.orders.{worker_id}"
