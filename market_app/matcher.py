"""The simulated exchange's matcher: every order type and time in force against one tick and its book.

Pure functions: the worker (market_app.in_worker) feeds them one user's open orders, each symbol's tick and
book under the user's realism profile; market_app.services persists what they decide (fills, the
orders' matcher state, expiries). The rules, per order, oldest first (docs/protocol.md §4b):

- **Latency.** An order trades from the first tick stamped at or after its `active_at_ms`.
- **Day.** A `day` order ends at the first tick of the next simulated trading day (`expires_seq`).
- **Stops.** A `stop`/`stop_limit` buy triggers when the tick's price is at or above its stop, a sell
  at or below. A `trailing_stop`'s stop follows the best price since it was placed (the high-water
  mark for a sell, the low for a buy) at `trail_amount` or `trail_percent` from it; the mark moves
  after the tick was checked against the stop of before. A triggered stop trades from that tick on as
  a market order (`stop_limit`: as a limit order at its limit).
- **Taking liquidity.** A market order, and the marketable part of a limit order, walks the opposite
  side of the book best level first (a limit only through levels at or better than its limit); its
  fill price is the volume-weighted price of what it took. Levels one order took are gone for the
  user's next orders of the tick.
- **Time in force.** `fok`: all at once or canceled; `ioc`: what the first tick allows, the rest
  canceled; `gtc`/`day`: the rest waits for the next ticks (a market order keeps taking).
- **Queue.** A limit order that rests gets a queue position at arrival: the size the book shows at
  its price on its side (none when it improves the best price; the last level's size when it is
  deeper than the book shows). A later tick that trades at its price consumes the queue by its
  volume; a tick that trades through its price clears it. Only then does it fill, at its limit, with
  what the tick's volume left over (shared by the user's resting orders).
- **One fill per order per tick**, and an OCO group (a bracket's exits, an `oco` pair) fills one leg
  per tick: the service cancels the other leg when it applies the fill.

The frictionless profile (`ideal`) has no queue: its book is one level at the tick's price holding
the tick's volume, shared by buys and sells: exactly the first matcher, which the tests keep as
their oracle (tests/support/reference_matcher.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from market_app.accounting import FillIntent, OpenOrder, quantize
from market_app.liquidity import Book, Level
from market_app.models import OrderSide, OrderType, TimeInForce

ZERO = Decimal(0)
HUNDRED = Decimal(100)
STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)


@dataclass(frozen=True)
class SymbolMarket:
    """One symbol at one tick: the traded price and volume, and the book under the user's profile."""

    price: Decimal
    volume: int
    book: Book


@dataclass(frozen=True)
class StateChange:
    """An order's new matcher state (persisted so a worker adopting the simulator continues it)."""

    order_id: uuid.UUID
    trail_anchor: Decimal | None
    triggered: bool
    queue_ahead: Decimal | None


@dataclass(frozen=True)
class Expiry:
    order_id: uuid.UUID
    reason: str


@dataclass
class TickOutcome:
    fills: list[FillIntent] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    expiries: list[Expiry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fills or self.changes or self.expiries)


def trailing_stop_price(order: OpenOrder, anchor: Decimal) -> Decimal:
    """The stop a trailing order stands at, `trail_amount` or `trail_percent` behind the anchor."""
    if order.trail_amount is not None:
        offset = order.trail_amount
    else:
        assert order.trail_percent is not None
        offset = anchor * order.trail_percent / HUNDRED
    return quantize(anchor - offset if order.side == OrderSide.SELL else anchor + offset)


def stop_crossed(side: str, price: Decimal, stop: Decimal) -> bool:
    return price >= stop if side == OrderSide.BUY else price <= stop


def _within(side: str, level_price: Decimal, limit: Decimal | None) -> bool:
    if limit is None:
        return True
    return level_price <= limit if side == OrderSide.BUY else level_price >= limit


class _Liquidity:
    """What is left of each level (and of the tick's volume) for the user's orders in this tick."""

    def __init__(self, markets: Mapping[str, SymbolMarket], frictionless: bool) -> None:
        self.markets = markets
        self.frictionless = frictionless
        self.taken: dict[tuple[str, str], list[Decimal]] = {}
        self.volume_left = {symbol: Decimal(m.volume) for symbol, m in markets.items()}

    def levels(self, symbol: str, side: str) -> tuple[tuple[Level, ...], list[Decimal]]:
        book = self.markets[symbol].book
        # A buy takes the asks, a sell the bids; the frictionless book is one pool for both sides.
        levels = book.asks if side == OrderSide.BUY else book.bids
        key = (symbol, "pool" if self.frictionless else side)
        if key not in self.taken:
            self.taken[key] = [ZERO] * len(levels)
        return levels, self.taken[key]

    def available(self, symbol: str, side: str, limit: Decimal | None) -> Decimal:
        levels, taken = self.levels(symbol, side)
        total = ZERO
        for level, used in zip(levels, taken, strict=True):
            if not _within(side, level.price, limit):
                break
            total += level.size - used
        return total

    def take(self, symbol: str, side: str, quantity: Decimal, limit: Decimal | None) -> tuple[Decimal, Decimal]:
        """Walk the levels for up to `quantity`: (quantity taken, its notional)."""
        levels, taken = self.levels(symbol, side)
        want, got, notional = quantity, ZERO, ZERO
        for index, level in enumerate(levels):
            if want <= 0 or not _within(side, level.price, limit):
                break
            size = min(want, level.size - taken[index])
            if size <= 0:
                continue
            taken[index] += size
            want -= size
            got += size
            notional += size * level.price
        if self.frictionless:
            self.volume_left[symbol] -= got
        return got, notional


def _queue_at_arrival(order: OpenOrder, book: Book) -> Decimal:
    """The size standing ahead of a new resting limit order at its price (see the module's docstring)."""
    assert order.limit_price is not None
    levels = book.bids if order.side == OrderSide.BUY else book.asks
    if not levels:
        return ZERO
    for level in levels:
        if level.price == order.limit_price:
            return level.size
    best = levels[0].price
    improves = order.limit_price > best if order.side == OrderSide.BUY else order.limit_price < best
    if improves:
        return ZERO
    deepest = levels[-1]
    beyond = order.limit_price < deepest.price if order.side == OrderSide.BUY else order.limit_price > deepest.price
    # Between two shown levels nobody stands at its price; beyond the book, as much as the last level.
    return deepest.size if beyond else ZERO


def match_tick(
    orders: Sequence[OpenOrder],
    markets: Mapping[str, SymbolMarket],
    *,
    tick_seq: int,
    tick_ms: int,
    frictionless: bool,
) -> TickOutcome:
    """What one tick does to one user's open orders (oldest first)."""
    outcome = TickOutcome()
    liquidity = _Liquidity(markets, frictionless)
    groups_filled: set[uuid.UUID] = set()
    for order in orders:
        market = markets.get(order.symbol)
        if market is None or order.remaining <= 0 or order.active_at_ms > tick_ms:
            continue
        if order.expires_seq is not None and tick_seq >= order.expires_seq:
            outcome.expiries.append(Expiry(order.id, "day order: the trading day ended"))
            continue
        if order.oco_group is not None and order.oco_group in groups_filled:
            continue
        state = _Step(order, market, liquidity, frictionless, tick_seq)
        state.run()
        if state.fill is not None:
            outcome.fills.append(state.fill)
            if order.oco_group is not None:
                groups_filled.add(order.oco_group)
        if state.changed():
            outcome.changes.append(StateChange(order.id, state.anchor, state.triggered, state.queue_ahead))
        if state.expiry is not None:
            outcome.expiries.append(Expiry(order.id, state.expiry))
    return outcome


class _Step:
    """One order at one tick."""

    def __init__(
        self, order: OpenOrder, market: SymbolMarket, liquidity: _Liquidity, frictionless: bool, tick_seq: int
    ) -> None:
        self.order = order
        self.market = market
        self.liquidity = liquidity
        self.frictionless = frictionless
        self.tick_seq = tick_seq
        self.anchor = order.trail_anchor
        self.triggered = order.triggered
        self.queue_ahead = order.queue_ahead
        self.fill: FillIntent | None = None
        self.expiry: str | None = None

    def changed(self) -> bool:
        order = self.order
        return (self.anchor, self.triggered, self.queue_ahead) != (
            order.trail_anchor,
            order.triggered,
            order.queue_ahead,
        )

    def run(self) -> None:
        order, price = self.order, self.market.price
        if order.order_type in STOP_TYPES and not self.triggered:
            if order.order_type == OrderType.TRAILING_STOP:
                anchor = self.anchor if self.anchor is not None else price
                stop = trailing_stop_price(order, anchor)
                if self.anchor is None:
                    self.anchor = anchor
            else:
                assert order.stop_price is not None
                stop = order.stop_price
            if not stop_crossed(order.side, price, stop):
                if order.order_type == OrderType.TRAILING_STOP and self.anchor is not None:
                    better = price > self.anchor if order.side == OrderSide.SELL else price < self.anchor
                    if better:
                        self.anchor = price
                return
            self.triggered = True
        limit = order.limit_price if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        self._trade(limit)

    def _trade(self, limit: Decimal | None) -> None:
        order, liquidity = self.order, self.liquidity
        remaining, tif = order.remaining, order.time_in_force
        if tif == TimeInForce.FOK and liquidity.available(order.symbol, order.side, limit) < remaining:
            self.expiry = "fill or kill: the book could not fill it at once"
            return
        got, notional = liquidity.take(order.symbol, order.side, remaining, limit)
        if got > 0:
            self._record(got, quantize(notional / got))
            self.queue_ahead = None if self.queue_ahead is None else ZERO
        if tif == TimeInForce.IOC and got < remaining:
            self.expiry = "immediate or cancel: the rest of it was canceled"
            return
        if got > 0 or limit is None or self.frictionless:
            return
        self._rest(limit)

    def _rest(self, limit: Decimal) -> None:
        """A resting limit order: join the queue at arrival, then fill once the queue ahead is used up."""
        order, market = self.order, self.market
        if self.queue_ahead is None:
            self.queue_ahead = _queue_at_arrival(order, market.book)
            return
        price, volume = market.price, Decimal(market.volume)
        at = price == limit
        through = price < limit if order.side == OrderSide.BUY else price > limit
        if not (at or through) or volume <= 0:
            return
        if through:
            self.queue_ahead = ZERO
            left_over = volume
        else:
            left_over = volume - self.queue_ahead
            self.queue_ahead = max(self.queue_ahead - volume, ZERO)
        quantity = min(order.remaining, left_over, self.liquidity.volume_left[order.symbol])
        if quantity <= 0:
            return
        self.liquidity.volume_left[order.symbol] -= quantity
        self._record(quantity, limit)

    def _record(self, quantity: Decimal, price: Decimal) -> None:
        self.fill = FillIntent(order_id=self.order.id, quantity=quantity, price=price, tick_seq=self.tick_seq)
