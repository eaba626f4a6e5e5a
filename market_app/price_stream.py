"""The live price stream of one connection: which symbols it follows, and conflation.

Every tick is offered to the stream and sent at once, unless the client asked for flow control
(`subscribe_market` with `flowControl`) and has MARKET_FLOW_WINDOW ticks it has not acknowledged
(`market_ack`): a client that is behind. Then the stream keeps only the newest quote (and book
levels and open candles) per symbol and sends them together with the next acknowledgement, so a
slow client's backlog stays bounded by the window and the number of symbols, not the number of
ticks. Order and position updates do not pass through here and are never conflated.

What a connection sees of a tick depends on its view: the symbols it follows, the realism
profile whose top of book it quotes, how many book levels it asked for, which candles, and whether
it keeps books from deltas and follows the trades. The text of a tick is built once per process
and view (most connections share one); a connection that keeps books gets that shared text while
it holds every book the tick's updates apply to, and a text of its own (with snapshots) otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from market_app import metrics
from market_app.book_deltas import book_checksum, book_delta
from market_app.events import MarketTickEvent
from market_app.liquidity import WireBook
from market_app.marketdata import (
    WireBooks,
    WireCandles,
    WireTops,
    books_of_event,
    candles_of_event,
    prints_of_event,
    tops_of_event,
)
from market_app.messages import TRADES_KEPT, BookChange, BookReply, ExchangeData, TradePrint
from market_app.prices import Quote
from market_app.realism import DEFAULT_PROFILE, ProfileName
from sessions_app.realtime.consumer import Connection


@dataclass(frozen=True)
class TickView:
    selection: frozenset[str] | None = None  # None: every symbol
    profile: ProfileName = DEFAULT_PROFILE
    depth: int = 0  # book levels per side (0: none)
    candles: tuple[str, ...] = ()  # intervals of the open candles to send
    book_deltas: bool = False  # the `depth` levels go out as `book` messages, not in `exchange_data`
    trades: bool = False  # `trades` messages follow the ticks


@dataclass(frozen=True)
class SymbolBook:
    """One symbol's book under one (profile, depth) at a tick, against the book of the tick before that
    this process encoded: `seq` is the tick its book last changed (its version), `delta` what changed
    then (None: nothing to send in an update; the book is new or unchanged)."""

    seq: int
    prev_seq: int | None
    book: WireBook
    checksum: int
    delta: WireBook | None

    def update(self) -> BookChange | None:
        if self.delta is None or self.prev_seq is None:
            return None
        return BookChange(
            action="update",
            seq=self.seq,
            prevSeq=self.prev_seq,
            bids=self.delta["bids"],
            asks=self.delta["asks"],
            checksum=self.checksum,
        )

    def snapshot(self) -> BookChange:
        return BookChange(
            action="snapshot",
            seq=self.seq,
            prevSeq=None,
            bids=self.book["bids"],
            asks=self.book["asks"],
            checksum=self.checksum,
        )


@dataclass(frozen=True)
class TickParts:
    symbols: dict[str, Any]
    depth: dict[str, Any] | None
    candles: dict[str, Any] | None
    books: dict[str, SymbolBook] | None = None  # with `book_deltas`, in place of `depth`
    prints: dict[str, list[TradePrint]] | None = None  # with `trades`


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

    @functools.cached_property
    def prints(self) -> dict[str, TradePrint]:
        """The tick's trade of each symbol that traded."""
        at = self._event["timestamp"]
        return {
            symbol: TradePrint(price=price, size=size, side=side, time=at)
            for symbol, (price, size, side) in prints_of_event(self._event).items()
        }


def tick_parts(
    event: MarketTickEvent,
    view: TickView,
    decoded: DecodedTick | None = None,
    books_of_view: dict[str, SymbolBook] | None = None,
) -> TickParts:
    """The pieces of `exchange_data` (and of `book` and `trades`) this view shows of the tick.
    `books_of_view`: with `book_deltas`, every symbol's book under the view's profile and depth."""
    decoded = decoded or DecodedTick(event)
    wanted = event["symbols"] if view.selection is None else _select(event["symbols"], view.selection)
    tops = decoded.tops.get(view.profile, {})
    symbols = {symbol: quote | tops.get(symbol, {}) for symbol, quote in wanted.items()} if tops else wanted
    depth = None
    books = decoded.books.get(view.profile, {}) if view.depth and not view.book_deltas else {}
    if books:
        n = view.depth
        depth = {
            symbol: {"bids": books[symbol]["bids"][:n], "asks": books[symbol]["asks"][:n]}
            for symbol in wanted
            if symbol in books
        }
    book_parts = None
    if books_of_view is not None:
        book_parts = {symbol: books_of_view[symbol] for symbol in wanted if symbol in books_of_view}
    prints = None
    if view.trades:
        prints = {symbol: [trade] for symbol, trade in decoded.prints.items() if symbol in wanted}
    candles = None
    if view.candles and decoded.candles:
        candles = {}
        for symbol in wanted:
            bars = decoded.candles.get(symbol)
            if bars:
                candles[symbol] = {interval: bars[interval] for interval in view.candles if interval in bars}
    return TickParts(symbols, depth, candles, book_parts, prints)


def _message(
    event: MarketTickEvent,
    parts: TickParts,
    books: dict[str, BookChange] | None = None,
    trades_snapshot: bool = False,
) -> str:
    """The tick's `exchange_data`; `books`, the book entries (by default, the shared updates)."""
    if books is None and parts.books is not None:
        books = {symbol: change for symbol, book in parts.books.items() if (change := book.update()) is not None}
    return ExchangeData(
        timestamp=event["timestamp"],
        symbols=parts.symbols,
        seq=event["seq"],
        depth=parts.depth,
        candles=parts.candles,
        books=books or None,
        trades=parts.prints or None,
        tradesSnapshot=trades_snapshot or None,
    ).to_json()


def quote_of_wire(wire: dict[str, Any]) -> Quote:
    """A tick's symbol (`price`, `change`, `volume`) back as a Quote."""
    price = Decimal(repr(wire["price"]))
    return Quote(price=price, open=price - Decimal(repr(wire["change"])), volume=int(wire["volume"]))


def _book_of_view(book: WireBook, depth: int) -> WireBook:
    return {"bids": book["bids"][:depth], "asks": book["asks"][:depth]}


BookKey = tuple[str, int]  # (profile, depth): the books a view with deltas is sent


class BooksAt(NamedTuple):
    """A key's books as of one tick."""

    seq: int
    timestamp: int
    books: dict[str, SymbolBook]


class _TickEncoder:
    """Builds a tick's parts and text once per process and view: most connections send identical text.

    For the views with book deltas it also keeps, per (profile, depth), each symbol's book as of the
    last tick it encoded, so that a tick's update (what changed since) is computed once per process,
    not per connection: a connection that has every book it applies to gets the shared text."""

    def __init__(self) -> None:
        self._seq = -1
        self._event: MarketTickEvent | None = None
        self._decoded: DecodedTick | None = None
        self._parts: dict[TickView, TickParts] = {}
        self._text: dict[TickView, str] = {}
        self._books: dict[BookKey, BooksAt] = {}  # the latest of each key, across ticks
        self.recent_prints: dict[str, deque[TradePrint]] = {}  # each symbol's latest trades

    def _fresh(self, event: MarketTickEvent) -> None:
        if event["seq"] != self._seq:
            self._seq, self._event, self._parts, self._text = event["seq"], event, {}, {}
            self._decoded = DecodedTick(event)
            for symbol, trade in self._decoded.prints.items():
                self.recent_prints.setdefault(symbol, deque(maxlen=TRADES_KEPT)).append(trade)

    def _books_of(self, event: MarketTickEvent, key: BookKey) -> dict[str, SymbolBook]:
        """Every symbol's book under (profile, depth) at this tick, with its update since the last."""
        latest = self._books.get(key)
        if latest is not None and latest.seq == self._seq:
            return latest.books
        assert self._decoded is not None
        profile, depth = key
        before = latest.books if latest is not None else {}
        now: dict[str, SymbolBook] = {}
        for symbol, full in self._decoded.books.get(profile, {}).items():
            book = _book_of_view(full, depth)
            last = before.get(symbol)
            if last is None:
                now[symbol] = SymbolBook(self._seq, None, book, book_checksum(book), None)
            elif last.book == book:
                now[symbol] = dataclasses.replace(last, delta=None)  # unchanged: its version stays
            else:
                delta = book_delta(last.book, book)
                now[symbol] = SymbolBook(self._seq, last.seq, book, book_checksum(book), delta)
        self._books[key] = BooksAt(self._seq, int(event["timestamp"]), now)
        return now

    def latest_books(self, view: TickView) -> BooksAt | None:
        """The view's books as of the last tick encoded (`request_book`)."""
        key = (view.profile.value, view.depth)
        if self._event is not None:
            self._books_of(self._event, key)  # computed already unless no connection of the view got the tick
        return self._books.get(key)

    def parts(self, event: MarketTickEvent, view: TickView) -> TickParts:
        self._fresh(event)
        parts = self._parts.get(view)
        if parts is None:
            books = None
            if view.book_deltas and view.depth:
                books = self._books_of(event, (view.profile.value, view.depth))
            parts = self._parts[view] = tick_parts(event, view, self._decoded, books)
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
        self._pending_books: dict[str, SymbolBook] = {}
        self._pending_prints: dict[str, deque[TradePrint]] = {}
        self._prints_dropped = False  # trades left out while the client was behind
        self._pending_event: MarketTickEvent | None = None
        self._encoder = encoder
        self._merged = False
        self.window = 0  # unacknowledged ticks allowed (0: the client does not acknowledge)
        self._unacknowledged: deque[int] = deque()  # the seq of each tick sent and not acknowledged
        self.book_seqs: dict[str, int] = {}  # each symbol's book version the client was sent
        self.prints_snapshot_due = False  # the next tick's `trades` are the recent ones (a fresh start)

    @property
    def selection(self) -> frozenset[str] | None:
        return self.view.selection

    def subscribe(self, view: TickView, window: int) -> None:
        """A new choice (`subscribe_market`)."""
        self.view = view
        self.use_window(window)
        self.start_over()

    def start_over(self) -> None:
        """Books start again from a snapshot, trades from the recent ones (a new subscription, a stop,
        another market)."""
        self.book_seqs = {}
        self.prints_snapshot_due = self.view.trades

    def use_window(self, window: int) -> None:
        """Flow control on (`window` ticks unacknowledged at most) or off (0)."""
        self.window = window
        self._unacknowledged.clear()

    async def offer(self, conn: Connection, event: MarketTickEvent, tick_encoder: _TickEncoder = encoder) -> None:
        """Send the tick, or keep its newest quotes while the client is behind. `tick_encoder`: the
        process's shared one for the shared feed, the connection's own for a tick of its user's market."""
        if self._pending_event is not None:
            self._merged = True
            self.conflated_ticks += 1
        if tick_encoder is not self._encoder:
            self._encoder = tick_encoder
            self.start_over()  # its books' versions are another market's
        parts = tick_encoder.parts(event, self.view)
        self._pending.update(parts.symbols)
        if parts.depth:
            self._pending_depth.update(parts.depth)
        if parts.candles:
            self._pending_candles.update(parts.candles)
        if parts.books:
            self._pending_books.update(parts.books)
        if parts.prints:
            for symbol, prints in parts.prints.items():
                kept = self._pending_prints.setdefault(symbol, deque(maxlen=TRADES_KEPT))
                self._prints_dropped |= len(kept) + len(prints) > TRADES_KEPT
                kept.extend(prints)
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
        event = self._pending_event
        assert event is not None
        if self.window:
            self._unacknowledged.append(event["seq"])
        await conn.send_text(self._take(event), "exchange_data")
        _SENT.inc()

    def _take(self, event: MarketTickEvent) -> str:
        """The `exchange_data` to send: the process's shared text of the tick for this view, unless the
        client fell behind (merged ticks), lacks a book the shared updates apply to, or is due the
        recent trades; then its own."""
        books = self._book_changes(self._pending_books, resync=self._merged)
        prints_snapshot = self.prints_snapshot_due or self._prints_dropped
        if books is None and not self._merged and not prints_snapshot:
            text = self._encoder.encode(event, self.view)
        else:
            prints: dict[str, list[TradePrint]] | None = None
            if self.view.trades:
                pending = self._encoder.recent_prints if self.prints_snapshot_due else self._pending_prints
                wanted = pending.keys() if self.view.selection is None else self.view.selection
                prints = {symbol: list(pending[symbol]) for symbol in wanted if symbol in pending}
            parts = TickParts(self._pending, self._pending_depth or None, self._pending_candles or None, prints=prints)
            text = _message(event, parts, books or {}, trades_snapshot=prints_snapshot)
        self.prints_snapshot_due = False
        self.drop_pending()
        return text

    def _book_changes(self, books: dict[str, SymbolBook], *, resync: bool) -> dict[str, BookChange] | None:
        """None while the client has every book the shared updates apply to (it gets those); otherwise
        its own entries, with a snapshot of each book it does not have (after a stretch it fell behind,
        of every book: never an update against a book it was not sent)."""
        have = self.book_seqs
        if not resync and all(have.get(s) == (b.seq if b.delta is None else b.prev_seq) for s, b in books.items()):
            for symbol, book in books.items():
                have[symbol] = book.seq
            return None
        changes: dict[str, BookChange] = {}
        for symbol, book in books.items():
            held = have.get(symbol)
            if held == book.seq:
                continue  # it has this very book
            update = book.update() if not resync and held == book.prev_seq else None
            changes[symbol] = update or book.snapshot()
            have[symbol] = book.seq
        return changes

    def book_snapshot(self, request_id: str, symbols: list[str] | None) -> BookReply | None:
        """Reply to `request_book`: a snapshot of the view's books (or the listed ones) as of the last
        tick; None when no tick came yet."""
        latest = self._encoder.latest_books(self.view)
        if latest is None:
            return None
        books = latest.books
        wanted = symbols if symbols else [s for s in books if self.view.selection is None or s in self.view.selection]
        changes = {symbol: books[symbol].snapshot() for symbol in wanted if symbol in books}
        for symbol, change in changes.items():
            self.book_seqs[symbol] = change.seq
        return BookReply(seq=latest.seq, timestamp=latest.timestamp, books=changes, requestId=request_id)

    def drop_pending(self) -> None:
        self._pending, self._pending_depth, self._pending_candles = {}, {}, {}
        self._pending_books, self._pending_prints, self._prints_dropped = {}, {}, False
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
    time_ms: int | None = None  # that bar's time (its market day counts for a daily loss limit)
    ack_to: str = ""  # the channel of the worker part playing the market (lock-step acknowledgements)
    orders_changed: bool = False  # orders placed, canceled or replaced since the last acknowledgement
    encoder: _TickEncoder = field(default_factory=lambda: _TickEncoder())  # its bars' books and trades


async def deliver_own_tick(conn: Connection, event: MarketTickEvent) -> None:
    """Hand one bar of the user's own market to a connection of that user."""
    own = conn.state(OwnPrices)
    if own.simulator_id != event.get("simulatorId"):
        own.simulator_id, own.quotes, own.encoder = str(event.get("simulatorId")), {}, _TickEncoder()
    own.ack_to = str(event.get("ackTo") or "")
    own.time_ms = event["timestamp"]
    for symbol, wire in event["symbols"].items():
        own.quotes[symbol] = quote_of_wire(wire)
    stream = stream_of(conn)
    if stream.following and not conn.ending and conn.simulator.own_market:
        await stream.offer(conn, event, own.encoder)
