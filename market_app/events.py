"""The market app's channel-layer payloads (market_app.services sends them).

Ticks go to the ticks group once each (computed once, fanned out by the channel layer).
Account changes go to the user's group after commit, as a ready `exchange_data_status`
built once for all of the user's connections and numbered in their session streams.
The market in a simulator worker hears about new or canceled orders in its worker's orders group
(market_app.groups.worker_orders_group; a hint: it also reloads open orders every lease renewal).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class MarketTickEvent(TypedDict):
    type: Literal["market.tick"]
    seq: int
    timestamp: int
    symbols: dict[str, dict[str, Any]]
    # Added by the producer, as JSON text (market_app.marketdata.books_of_event / candles_of_event decode
    # them): profile -> symbol -> {bids, asks: [[price, size], ...]}, and symbol -> interval -> the open bar.
    tops: NotRequired[str]  # profile -> symbol -> {bid, bidSize, ask, askSize}: the first level of `books`
    books: NotRequired[str]
    candles: NotRequired[str]
    prints: NotRequired[str]  # symbol -> [price, size, side]: the tick's trade (market_app.marketdata.Tape)


class OrdersChangedCommand(TypedDict):
    type: Literal["market.orders_changed"]
    userId: int


class OwnAckCommand(TypedDict):
    """A client acknowledged bar `seq` of its user's own market in lock-step (market_app.own_market)."""

    type: Literal["market.own_ack"]
    simulatorId: str
    seq: int
    ordersChanged: bool
