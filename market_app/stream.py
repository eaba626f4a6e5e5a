"""The live price stream of one connection: which symbols it follows, and conflation.

Every tick is offered to the stream; it is sent at once unless the socket still has
more than MARKET_CONFLATE_BACKLOG_BYTES unsent (a slow client). Then the stream keeps
only the newest quote per symbol and sends them together once the socket drains, so a
slow client's backlog stays bounded by the number of symbols, not the number of ticks.
Order and position updates do not pass through here and are never conflated.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from market_app import metrics
from market_app.events import MarketTickEvent
from market_app.messages import ExchangeData
from sessions_app.realtime import Connection
from sessions_app.realtime.metrics import count_out


class _TickEncoder:
    """Encodes a tick once per process and symbol selection: most connections send identical text."""

    def __init__(self) -> None:
        self._seq = -1
        self._cache: dict[frozenset[str] | None, str] = {}

    def encode(self, event: MarketTickEvent, selection: frozenset[str] | None) -> str:
        if event["seq"] != self._seq:
            self._seq, self._cache = event["seq"], {}
        text = self._cache.get(selection)
        if text is None:
            symbols = event["symbols"] if selection is None else _select(event["symbols"], selection)
            text = ExchangeData(timestamp=event["timestamp"], symbols=symbols, seq=event["seq"]).to_json()
            self._cache[selection] = text
        return text


def _select(symbols: dict[str, Any], selection: frozenset[str]) -> dict[str, Any]:
    return {symbol: quote for symbol, quote in symbols.items() if symbol in selection}


encoder = _TickEncoder()
# Label children looked up once: every tick offered to every follower counts one.
_SENT = metrics.TICK_DELIVERIES.labels("sent")
_CONFLATED = metrics.TICK_DELIVERIES.labels("conflated")


class MarketStream:
    def __init__(self) -> None:
        self.selection: frozenset[str] | None = None  # None: every symbol
        self.following = False
        self.conflated_ticks = 0
        self._pending: dict[str, Any] = {}
        self._pending_event: MarketTickEvent | None = None
        self._merged = False

    async def offer(self, conn: Connection, event: MarketTickEvent) -> None:
        if self._pending_event is not None:
            self._merged = True
            self.conflated_ticks += 1
        symbols = event["symbols"] if self.selection is None else _select(event["symbols"], self.selection)
        self._pending.update(symbols)
        self._pending_event = event
        backlog = conn.outbound_backlog_bytes()
        if backlog is not None and backlog > settings.MARKET_CONFLATE_BACKLOG_BYTES:
            _CONFLATED.inc()
            return  # the client is behind: keep only the newest quotes until it catches up
        await conn.send(text_data=self._take())
        _SENT.inc()
        count_out("exchange_data")

    def _take(self) -> str:
        event = self._pending_event
        assert event is not None
        if self._merged:
            text = ExchangeData(timestamp=event["timestamp"], symbols=self._pending, seq=event["seq"]).to_json()
        else:
            text = encoder.encode(event, self.selection)
        self._pending, self._pending_event, self._merged = {}, None, False
        return text

    def drop_pending(self) -> None:
        self._pending, self._pending_event, self._merged = {}, None, False


def stream_of(conn: Connection) -> MarketStream:
    """The connection's market stream (created on first use)."""
    return conn.state(MarketStream)


async def deliver_tick(conn: Connection, event: MarketTickEvent) -> None:
    """Hand one tick to a connection following the prices (called by the process's tick relay)."""
    stream = stream_of(conn)
    if stream.following and not conn.ending:
        await stream.offer(conn, event)
