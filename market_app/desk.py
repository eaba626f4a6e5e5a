"""Matching inside a simulator worker: the open orders of the users whose simulators
it runs, matched against every feed tick, fills applied through market_app.services."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from market_app import services
from market_app.events import MarketTickEvent
from market_app.matching import OpenOrder, match
from market_app.prices import Quote

if TYPE_CHECKING:
    from simulator_app.engine import SimulationRun

logger = logging.getLogger(__name__)


def quotes_of(event: MarketTickEvent) -> dict[str, Quote]:
    quotes = {}
    for symbol, wire in event["symbols"].items():
        price = Decimal(repr(wire["price"]))
        quotes[symbol] = Quote(price=price, open=price - Decimal(repr(wire["change"])), volume=int(wire["volume"]))
    return quotes


class TradingDesk:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.open_orders: dict[int, list[OpenOrder]] = {}

    async def reload(self, user_ids: Iterable[int]) -> None:
        users = list(set(user_ids))
        if users:
            self.open_orders.update(await database_sync_to_async(services.open_orders_for_matching)(users))

    def forget(self, user_ids: set[int]) -> None:
        for user_id in list(self.open_orders):
            if user_id not in user_ids:
                del self.open_orders[user_id]

    async def on_tick(self, event: MarketTickEvent, runs: Iterable[SimulationRun]) -> list[SimulationRun]:
        """Match every running simulator's user against the tick. Returns runs whose lease turned out lost."""
        quotes = quotes_of(event)
        lost = []
        for run in runs:
            orders = self.open_orders.get(run.user_id)
            run.last_tick_seq = event["seq"]
            if not run.is_running or not orders:
                continue
            fills = match(orders, quotes, event["seq"])
            if not fills:
                continue
            remaining = await database_sync_to_async(services.fills_apply)(
                simulator_id=run.simulator_id,
                worker_id=self.worker_id,
                epoch=run.epoch,
                user_id=run.user_id,
                fills=fills,
            )
            if remaining is None:
                lost.append(run)
            else:
                self.open_orders[run.user_id] = remaining
        return lost
