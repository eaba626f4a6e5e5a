"""Channel-layer names of the market app."""

from __future__ import annotations


def ticks_group() -> str:
    """Every tick of the shared feed goes here once; connections whose simulator runs, and workers, follow it."""
    return "market.ticks"
