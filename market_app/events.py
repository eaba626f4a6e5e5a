"""The market app's one way to publish.

Ticks go to the ticks group once each (computed once, fanned out by the channel layer).
Account changes go to the user's group after commit, as a ready `exchange_data_status`
built once for all of the user's connections and numbered in their session streams.
Workers hear about new or canceled orders on their own channel (a hint: they also reload
open orders every lease renewal).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from channels.layers import get_channel_layer
from django.db import transaction

from market_app.groups import ticks_group
from market_app.prices import Quote
from market_app.snapshots import exchange_data_status
from sessions_app.layer import send_after_commit
from sessions_app.session_stream import push_to_user


class MarketTickEvent(TypedDict):
    type: Literal["market.tick"]
    seq: int
    timestamp: int
    symbols: dict[str, dict[str, Any]]


class OrdersChangedCommand(TypedDict):
    type: Literal["market.orders_changed"]
    userId: int


async def publish_tick(*, seq: int, timestamp: int, quotes: dict[str, Quote]) -> None:
    event: MarketTickEvent = {
        "type": "market.tick",
        "seq": seq,
        "timestamp": timestamp,
        "symbols": {symbol: quote.to_wire() for symbol, quote in quotes.items()},
    }
    await get_channel_layer().group_send(ticks_group(), dict(event))


def publish_account_changed(user_id: int) -> None:
    """After commit, send the user's connections a fresh snapshot of their account."""

    def send() -> None:
        # Built once for all of the user's connections, and numbered in their session streams:
        # order and position updates are never conflated, and are replayed on `reconnect`.
        push_to_user(user_id=user_id, message=exchange_data_status(user_id=user_id, reason="orders_changed"))

    transaction.on_commit(send)


def tell_worker_orders_changed(worker_channel: str, user_id: int) -> None:
    command: OrdersChangedCommand = {"type": "market.orders_changed", "userId": user_id}
    send_after_commit(worker_channel, command)
