"""The worker's trading desk (market_app.worker_matching) against the real ORM: ticks in, the exchange's
outcome applied, the book each tick carries for the user's profile."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from market_app import services
from market_app.events import MarketTickEvent
from market_app.liquidity import Book, Level
from market_app.messages import OrderTicket
from market_app.models import Order, OrderStatus
from market_app.worker_matching import TradingDesk
from simulator_app.models import SimulatorStatus
from simulator_app.simulation_run import SimulationRun
from tests.market_app.test_order_types_services import trader
from tests.market_app.test_trading_services import Trader, set_prices

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]

D = Decimal


def run_of(who: Trader, profile: str) -> SimulationRun:
    import uuid

    return SimulationRun(
        simulator_id=who.simulator_id,
        epoch=who.epoch,
        user_id=who.user_id,
        session_id=uuid.uuid4(),
        status=SimulatorStatus.RUNNING,
        profile=profile,
    )


def tick(
    seq: int, price: str, *, volume: int = 500, profile: str = "realistic", spread: str = "0.01"
) -> MarketTickEvent:
    p, s = D(price), D(spread)
    book = Book(bids=(Level(p - s, D(300)), Level(p - 2 * s, D(300))), asks=(Level(p, D(300)), Level(p + s, D(300))))
    return {
        "type": "market.tick",
        "seq": seq,
        "timestamp": 10**13 + seq,
        "symbols": {"AAPL": {"price": float(p), "change": 0.0, "volume": volume}},
        "books": json.dumps({profile: {"AAPL": book.to_wire()}}),
    }


def test_a_bracket_trades_through_the_desk_from_entry_to_one_exit() -> None:
    set_prices({"AAPL": "100.00"}, seq=1)
    who = trader()
    entry = services.order_place(
        user_id=who.user_id,
        ticket=OrderTicket(
            symbol="AAPL",
            side="buy",
            orderType="market",
            quantity=10.0,
            orderClass="bracket",
            takeProfit={"limitPrice": 100.5},
            stopLoss={"stopPrice": 99.5},
        ),
    )
    desk = TradingDesk(who.worker_id)
    run = run_of(who, "realistic")
    async_to_sync(desk.reload)([who.user_id])
    async_to_sync(desk.on_tick)(tick(2, "100.00"), [run])
    entry.refresh_from_db()
    assert entry.status == OrderStatus.FILLED and entry.average_price == D("100.00")
    assert len(desk.open_orders[who.user_id]) == 2
    async_to_sync(desk.on_tick)(tick(3, "100.10"), [run])
    async_to_sync(desk.on_tick)(tick(4, "99.40"), [run])  # through the stop
    statuses = dict(Order.objects.filter(parent=entry).values_list("order_type", "status"))
    assert statuses == {"limit": "canceled", "stop": "filled"}
