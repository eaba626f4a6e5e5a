"""The live price stream of one connection: which symbols it follows, and conflation.

Every tick is offered to the stream and sent at once, unless the client asked for flow control
(`subscribe_market` with `flowControl`) and has MARKET_FLOW_WINDOW ticks it has not acknowledged
(`market_ack`): a client that is behind. Then the stream keeps only the newest quote (and book
levels and open candles) per symbol and sends them together with the next acknowledgement, so a
slow client's backlog stays bounded by the window and the number of symbols, not the number of
ticks. Order and position updates do not pass through here and are never conflated.

What a connection sees of a tick depends on its view: the symbols it follows, the realism
profile whose top of book it quotes, how many book levels it asked for and which candles. The
text of a tick is built once per process and view (most connections share one).
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from market_app import metrics
from market_app.events import MarketTickEvent
from market_app.marketdata import WireBooks, WireCandles, WireTops, books_of_event, candles_of_event, tops_of_event
from market_app.messages import ExchangeData
from market_app.prices import Quote
from market_app.realism import DEFAULT_PROFILE, ProfileName
from sessions_app.realtime.consumer import Connection


@dataclass(frozen=True)
class TickView:
    selection: frozenset[str] | None = None  # None: every symbol
    profile: ProfileName = DEFAULT_PROFILE
    depth: int = 0  # book levels per side (0: none)
    candles: tuple[str, ...] = ()  # intervals of the open candles to send


@dataclass(frozen=True)
class TickParts:
    symbols: dict[str, Any]
    depth: dict[str, Any] | None
    candles: dict[str, Any] | None


class DecodedTick:
    """A tick's tops of book, books and open candles, each decoded at most once per process and only
    when a view needs it (they travel as JSON text; most views want only the tops)."""

    def __init__(self, event: MarketTickEvent) -> None:
        self._event = event

    @functools.cached_property
    def tops(self) -> WireTops:
        return tops_of_event(self._event)

    @functools.cached_property
    def books(self) -> WireBooks:
        return books_of_event(self._event)

    @functools.cached_property
    def candles(self) -> WireCandles:
        return candles_of_event(self._event)


def tick_parts(event: MarketTickEvent, view: TickView, decoded: DecodedTick | None = None) -> TickParts:
    """The pieces of `exchange_data` this view shows of the tick."""
    decoded = decoded or DecodedTick(event)
    wanted = event["symbols"] if view.selection is None else _select(event["symbols"], view.selection)
    tops = decoded.tops.get(view.profile, {})
    symbols = {symbol: quote | tops.get(symbol, {}) for symbol, quote in wanted.items()} if tops else wanted
    depth = None
    books = decoded.books.get(view.profile, {}) if view.depth else {}
    if books:
        n = view.depth
        depth = {
            symbol: {"bids": books[symbol]["bids"][:n], "asks": books[symbol]["asks"][:n]}
            for symbol in wanted
            if symbol in books
        }
    candles = None
    if view.candles and decoded.candles:
        candles = {}
        for symbol in wanted:
            bars = decoded.candles.get(symbol)
            if bars:
                candles[symbol] = {interval: bars[interval] for interval in view.candles if interval in bars}
    return TickParts(symbols, depth, candles)


def _message(event: MarketTickEvent, parts: TickParts) -> str:
    return ExchangeData(
        timestamp=event["timestamp"], symbols=parts.symbols, seq=event["seq"], depth=parts.depth, candles=parts.candles
    ).to_json()


def quote_of_wire(wire: dict[str, Any]) -> Quote:
    """A tick's symbol (`price`, `change`, `volume`) back as a Quote."""
    price = Decimal(repr(wire["price"]))
    return Quote(price=price, open=price - Decimal(repr(wire["change"])), volume=int(wire["volume"]))


class _TickEncoder:
    """Builds a tick's parts and text once per process and view: most connections send identical text."""

    def __init__(self) -> None:
        self._seq = -1
        self._decoded: DecodedTick | None = None
        self._parts: dict[TickView, TickParts] = {}
        self._text: dict[TickView, str] = {}

    def _fresh(self, event: MarketTickEvent) -> None:
        if event["seq"] != self._seq:
            self._seq, self._decoded, self._parts, self._text = event["seq"], None, {}, {}

    def parts(self, event: MarketTickEvent, view: TickView) -> TickParts:
        self._fresh(event)
        parts = self._parts.get(view)
        if parts is None:
            if self._decoded is None:
                self._decoded = DecodedTick(event)
            parts = self._parts[view] = tick_parts(event, view, self._decoded)
        return parts

    def encode(self, event: MarketTickEvent, view: TickView) -> str:
        self._fresh(event)
        text = self._text.get(view)
        if text is None:
            text = self._text[view] = _message(event, self.parts(event, view))
        return text


def _select(symbols: dict[str, Any], selection: frozenset[str]) -> dict[str, Any]:
    return {symbol: quote for symbol, quote in symbols.items() if symbol in selection}


encoder = _TickEncoder()
# Label children looked up once: every tick offered to every follower counts one.
_SENT = metrics.TICK_DELIVERIES.labels("sent")
_CONFLATED = metrics.TICK_DELIVERIES.labels("conflated")


class MarketStream:
    def __init__(self) -> None:
        self.view = TickView()
        self.following = False
        self.conflated_ticks = 0
        self._pending: dict[str, Any] = {}
        self._pending_depth: dict[str, Any] = {}
        self._pending_candles: dict[str, Any] = {}
        self._pending_event: MarketTickEvent | None = None
        self._encoder = encoder
        self._merged = False
        self.window = 0  # unacknowledged ticks allowed (0: the client does not acknowledge)
        self._unacknowledged: deque[int] = deque()  # the seq of each tick sent and not acknowledged

    @property
    def selection(self) -> frozenset[str] | None:
        return self.view.selection

    def use_window(self, window: int) -> None:
        """Flow control on (`window` ticks unacknowledged at most) or off (0)."""
        self.window = window
        self._unacknowledged.clear()

    async def offer(self, conn: Connection, event: MarketTickEvent, tick_encoder: _TickEncoder = encoder) -> None:
        """Send the tick, or keep its newest quotes while the client is behind. `tick_encoder`: the
        process's shared one for the shared feed, a fresh one for a tick of one user's own market."""
        if self._pending_event is not None:
            self._merged = True
            self.conflated_ticks += 1
        self._encoder = tick_encoder
        parts = tick_encoder.parts(event, self.view)
        self._pending.update(parts.symbols)
        if parts.depth:
            self._pending_depth.update(parts.depth)
        if parts.candles:
            self._pending_candles.update(parts.candles)
        self._pending_event = event
        if self.window and len(self._unacknowledged) >= self.window:
            _CONFLATED.inc()
            return  # the client is behind: keep only the newest quotes until it acknowledges
        await self._send(conn)

    async def acknowledged(self, conn: Connection, seq: int) -> None:
        """The client applied every tick up to `seq`: what waited goes out (merged)."""
        while self._unacknowledged and self._unacknowledged[0] <= seq:
            self._unacknowledged.popleft()
        if self.following and self._pending_event is not None and len(self._unacknowledged) < self.window:
            await self._send(conn)

    async def _send(self, conn: Connection) -> None:
        assert self._pending_event is not None
        seq = self._pending_event["seq"]
        text = self._take()
        if self.window:
            self._unacknowledged.append(seq)
        await conn.send_text(text, "exchange_data")
        _SENT.inc()

    def _take(self) -> str:
        event = self._pending_event
        assert event is not None
        if self._merged:
            merged = TickParts(self._pending, self._pending_depth or None, self._pending_candles or None)
            text = _message(event, merged)
        else:
            text = self._encoder.encode(event, self.view)
        self.drop_pending()
        return text

    def drop_pending(self) -> None:
        self._pending, self._pending_depth, self._pending_candles = {}, {}, {}
        self._pending_event, self._merged = None, False


def stream_of(conn: Connection) -> MarketStream:
    """The connection's market stream (created on first use)."""
    return conn.state(MarketStream)


async def deliver_tick(conn: Connection, event: MarketTickEvent) -> None:
    """Hand one tick of the shared feed to a connection following the prices (called by the process's
    tick relay); one whose user's simulator has a market of its own gets that market's bars instead."""
    stream = stream_of(conn)
    if stream.following and not conn.ending and not conn.simulator.own_market:
        await stream.offer(conn, event)


@dataclass
class OwnPrices:
    """The last bar of the user's own market this connection got: an order it places is checked
    against these prices (the ones its trader saw)."""

    simulator_id: str = ""
    quotes: dict[str, Quote] = field(default_factory=dict)
    ack_to: str = ""  # the channel of the worker part playing the market (lock-step acknowledgements)
    orders_changed: bool = False  # orders placed, canceled or replaced since the last acknowledgement


async def deliver_own_tick(conn: Connection, event: MarketTickEvent) -> None:
    """Hand one bar of the user's own market to a connection of that user."""
    own = conn.state(OwnPrices)
    if own.simulator_id != event.get("simulatorId"):
        own.simulator_id, own.quotes = str(event.get("simulatorId")), {}
    own.ack_to = str(event.get("ackTo") or "")
    for symbol, wire in event["symbols"].items():
        own.quotes[symbol] = quote_of_wire(wire)
    stream = stream_of(conn)
    if stream.following and not conn.ending and conn.simulator.own_market:
        await stream.offer(conn, event, _TickEncoder())
