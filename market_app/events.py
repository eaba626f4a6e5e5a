"""The market app's channel-layer payloads (market_app.services sends them).

Ticks go to the ticks group once each (computed once, fanned out by the channel layer).
Account changes go to the user's group after commit, as a ready `exchange_data_status`
built once for all of the user's connections and numbered in their session streams.
Workers hear about new or canceled orders on their own channel (a hint: they also reload
open orders every lease renewal).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class MarketTickEvent(TypedDict):
    type: Literal["market.tick"]
    seq: int
    timestamp: int
    symbols: dict[str, dict[str, Any]]
    # Added by the producer (market_app.marketdata): profile -> symbol -> {bids, asks: [[price, size], ...]},
    # and symbol -> interval -> the open candle. Absent from a tick published without them.
    books: NotRequired[dict[str, dict[str, dict[str, list[list[float]]]]]]
    candles: NotRequired[dict[str, dict[str, dict[str, Any]]]]


class OrdersChangedCommand(TypedDict):
    type: Literal["market.orders_changed"]
    userId: int
