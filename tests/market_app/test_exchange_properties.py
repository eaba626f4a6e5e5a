"""Invariants of the exchange's matcher (market_app.matcher) and of a fill's accounting, over
generated books, orders and price paths (hypothesis). Pure: no database."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from market_app.accounting import OpenOrder, PositionState, apply_fill
from market_app.liquidity import DEFAULT_LIQUIDITY, book_of
from market_app.matcher import SymbolMarket, match_tick, stop_crossed, trailing_stop_price
from market_app.prices import Quote
from market_app.realism import PROFILES, ProfileName
from tests.support.reference_matcher import match

D = Decimal
TICK = D("0.01")
SYMBOL = "AAPL"

prices = st.integers(min_value=5_000, max_value=15_000).map(lambda cents: TICK * cents)
quantities = st.integers(min_value=1, max_value=3_000).map(D)
volumes = st.integers(min_value=0, max_value=5_000)
sides = st.sampled_from(["buy", "sell"])
frictional = st.sampled_from([ProfileName.REALISTIC, ProfileName.HARSH])


def market_at(price: Decimal, volume: int, profile: ProfileName, seq: int) -> SymbolMarket:
    book = book_of(
        price=price,
        tick_size=TICK,
        params=DEFAULT_LIQUIDITY,
        realism=PROFILES[profile],
        seed=11,
        seq=seq,
        symbol=SYMBOL,
        volume=volume,
    )
    return SymbolMarket(price=price, volume=volume, book=book)


def an_order(side: str, order_type: str, quantity: Decimal, **fields: object) -> OpenOrder:
    base: dict[str, object] = {"limit_price": None}
    base.update(fields)
    return OpenOrder(
        id=uuid.uuid4(),
        symbol=SYMBOL,
        side=side,
        order_type=order_type,
        quantity=quantity,
        filled_qty=D(0),
        **base,  # type: ignore[arg-type]
    )


def one_tick(orders: list[OpenOrder], market: SymbolMarket, profile: ProfileName, seq: int = 1):  # type: ignore[no-untyped-def]
    return match_tick(
        orders, {SYMBOL: market}, tick_seq=seq, tick_ms=1_000 + seq, frictionless=PROFILES[profile].frictionless
    )


@st.composite
def limit_orders(draw: st.DrawFn) -> OpenOrder:
    side = draw(sides)
    limit = draw(prices)
    tif = draw(st.sampled_from(["gtc", "ioc", "fok", "day"]))
    return an_order(side, "limit", draw(quantities), limit_price=limit, time_in_force=tif)


@st.composite
def any_orders(draw: st.DrawFn) -> OpenOrder:
    side = draw(sides)
    kind = draw(st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]))
    quantity = draw(quantities)
    fields: dict[str, object] = {}
    if kind in ("limit", "stop_limit"):
        fields["limit_price"] = draw(prices)
    if kind in ("stop", "stop_limit"):
        fields["stop_price"] = draw(prices)
    if kind == "trailing_stop":
        fields["trail_amount"] = TICK * draw(st.integers(1, 500))
    if kind in ("market", "limit"):
        fields["time_in_force"] = draw(st.sampled_from(["gtc", "ioc", "fok"]))
    if draw(st.booleans()):
        fields["oco_group"] = GROUP
    return an_order(side, kind, quantity, **fields)


GROUP = uuid.UUID(int=7)


# --- Accounting ---------------------------------------------------------------------------------------


@given(
    held=st.integers(0, 10_000).map(D),
    average=prices,
    quantity=quantities,
    price=prices,
    fee=st.integers(0, 5_000).map(lambda cents: TICK * cents),
    side=sides,
)
def test_cash_plus_position_value_is_conserved_net_of_fees(
    held: Decimal, average: Decimal, quantity: Decimal, price: Decimal, fee: Decimal, side: str
) -> None:
    if side == "sell":
        quantity = min(quantity, held)
        if quantity <= 0:
            return
    position = PositionState(held, average if held else D(0), D(0))
    effect = apply_fill(position, side=side, quantity=quantity, price=price, fee=fee)
    before = held * price
    after = effect.cash_delta + effect.position.quantity * price
    assert abs(after - (before - fee)) <= D("0.00000001")
    # Realized profit is net of the fee: a buy realizes only -fee.
    if side == "buy":
        assert effect.position.realized_pnl == -fee


@given(
    fills=st.lists(
        st.tuples(sides, st.integers(1, 500).map(D), prices, st.integers(0, 500).map(lambda cents: TICK * cents)),
        min_size=1,
        max_size=12,
    ),
    mark=prices,
)
def test_a_margin_accounts_cash_and_signed_position_keep_the_equity_and_the_profit(
    fills: list[tuple[str, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    """Any fills, shorts included: cash + position x price moves only by the price and the fees, and the
    realized plus the unrealized profit is what the cash and the position are worth."""
    position, cash, fees = PositionState(), D(0), D(0)
    for side, quantity, price, fee in fills:
        before = cash + position.quantity * price
        effect = apply_fill(position, side=side, quantity=quantity, price=price, fee=fee, short=True)
        position, cash, fees = effect.position, cash + effect.cash_delta, fees + fee
        assert abs(cash + position.quantity * price - (before - fee)) <= D("0.00000001")
        assert position.average_price >= 0 and (position.quantity != 0 or position.average_price == 0)
    unrealized = (mark - position.average_price) * position.quantity
    # Each fill's notional and average are rounded to eight places: a cent's worth of rounding at most.
    assert abs(position.realized_pnl + unrealized - (cash + position.quantity * mark)) <= D("0.0001")


# --- Matching ------------------------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    orders=st.lists(limit_orders(), min_size=1, max_size=6),
    price=prices,
    volume=volumes,
    profile=st.sampled_from(list(ProfileName)),
    ticks=st.integers(1, 4),
)
def test_no_fill_is_worse_than_its_limit_and_no_order_fills_twice_in_a_tick(
    orders: list[OpenOrder], price: Decimal, volume: int, profile: ProfileName, ticks: int
) -> None:
    for seq in range(1, ticks + 1):
        outcome = one_tick(orders, market_at(price + TICK * seq, volume, profile, seq), profile, seq)
        ids = [fill.order_id for fill in outcome.fills]
        assert len(ids) == len(set(ids))
        by_id = {order.id: order for order in orders}
        for fill in outcome.fills:
            order = by_id[fill.order_id]
            assert order.limit_price is not None and 0 < fill.quantity <= order.remaining
            assert fill.price <= order.limit_price if order.side == "buy" else fill.price >= order.limit_price
        orders = advance(orders, outcome)


def advance(orders: list[OpenOrder], outcome) -> list[OpenOrder]:  # type: ignore[no-untyped-def]
    """The orders after a tick, as the service records them."""
    from dataclasses import replace

    filled = {fill.order_id: fill.quantity for fill in outcome.fills}
    changed = {change.order_id: change for change in outcome.changes}
    ended = {expiry.order_id for expiry in outcome.expiries}
    after = []
    for order in orders:
        if order.id in ended:
            continue
        if order.id in changed:
            change = changed[order.id]
            order = replace(
                order, trail_anchor=change.trail_anchor, triggered=change.triggered, queue_ahead=change.queue_ahead
            )
        order = replace(order, filled_qty=order.filled_qty + filled.get(order.id, D(0)))
        if order.remaining > 0:
            after.append(order)
    return after


@settings(max_examples=150)
@given(side=sides, quantity=quantities, price=prices, volume=volumes, profile=st.sampled_from(list(ProfileName)))
def test_a_fill_or_kill_order_fills_entirely_or_not_at_all(
    side: str, quantity: Decimal, price: Decimal, volume: int, profile: ProfileName
) -> None:
    fok = an_order(side, "market", quantity, time_in_force="fok")
    outcome = one_tick([fok], market_at(price, volume, profile, 1), profile)
    if outcome.fills:
        assert outcome.fills[0].quantity == quantity and not outcome.expiries
    else:
        assert [expiry.order_id for expiry in outcome.expiries] == [fok.id]


@settings(max_examples=150)
@given(order=limit_orders(), price=prices, volume=volumes, profile=st.sampled_from(list(ProfileName)))
def test_an_immediate_or_cancel_order_never_rests(
    order: OpenOrder, price: Decimal, volume: int, profile: ProfileName
) -> None:
    from dataclasses import replace

    ioc = replace(order, time_in_force="ioc")
    outcome = one_tick([ioc], market_at(price, volume, profile, 1), profile)
    filled = sum((fill.quantity for fill in outcome.fills), D(0))
    assert filled == ioc.quantity or [expiry.order_id for expiry in outcome.expiries] == [ioc.id]
    assert advance([ioc], outcome) == []


@settings(max_examples=150)
@given(
    orders=st.lists(any_orders(), min_size=2, max_size=6),
    price=prices,
    volume=volumes,
    profile=st.sampled_from(list(ProfileName)),
)
def test_an_oco_group_fills_at_most_one_leg_in_a_tick(
    orders: list[OpenOrder], price: Decimal, volume: int, profile: ProfileName
) -> None:
    outcome = one_tick(orders, market_at(price, volume, profile, 1), profile)
    grouped = {order.id for order in orders if order.oco_group == GROUP}
    assert len([fill for fill in outcome.fills if fill.order_id in grouped]) <= 1


@settings(max_examples=100)
@given(
    side=sides,
    kind=st.sampled_from(["stop", "stop_limit", "trailing_stop"]),
    stop=prices,
    trail=st.integers(1, 300).map(lambda ticks: TICK * ticks),
    path=st.lists(prices, min_size=1, max_size=12),
    profile=st.sampled_from(list(ProfileName)),
)
def test_a_stop_never_triggers_before_the_price_crosses_it(
    side: str, kind: str, stop: Decimal, trail: Decimal, path: list[Decimal], profile: ProfileName
) -> None:
    fields: dict[str, object] = {}
    if kind == "trailing_stop":
        fields = {"trail_amount": trail, "trail_anchor": path[0]}
    else:
        fields = {"stop_price": stop}
        if kind == "stop_limit":
            fields["limit_price"] = stop
    orders = [an_order(side, kind, D(1), **fields)]
    anchor = path[0]
    for seq, price in enumerate(path, start=1):
        order = orders[0]
        level = trailing_stop_price(order, anchor) if kind == "trailing_stop" else stop
        outcome = one_tick(orders, market_at(price, 1_000, profile, seq), profile, seq)
        triggered_now = any(change.triggered for change in outcome.changes) or bool(outcome.fills)
        if triggered_now:
            assert stop_crossed(side, price, level)
            return
        assert not stop_crossed(side, price, level)
        if kind == "trailing_stop":
            anchor = max(anchor, price) if side == "sell" else min(anchor, price)
        orders = advance(orders, outcome)


@settings(max_examples=150)
@given(
    side=sides,
    offset=st.integers(0, 4),
    volumes_at_price=st.lists(st.integers(0, 3_000), min_size=1, max_size=10),
    seed_price=prices,
)
def test_a_resting_limit_order_never_skips_the_queue_ahead_of_it(
    side: str, offset: int, volumes_at_price: list[int], seed_price: Decimal
) -> None:
    profile = ProfileName.REALISTIC
    arrival = market_at(seed_price, 0, profile, 1)
    levels = arrival.book.bids if side == "buy" else arrival.book.asks
    limit = levels[min(offset, len(levels) - 1)].price
    order = an_order(side, "limit", D(50), limit_price=limit)
    outcome = one_tick([order], arrival, profile, 1)
    assert not outcome.fills
    orders = advance([order], outcome)
    ahead = orders[0].queue_ahead
    assert ahead is not None and ahead > 0
    traded = D(0)
    for seq, volume in enumerate(volumes_at_price, start=2):
        # The tick trades exactly at the limit; its book is moved away so nothing crosses it.
        book = market_at(limit + (TICK * 200 if side == "buy" else -TICK * 200), volume, profile, seq).book
        outcome = one_tick(orders, SymbolMarket(price=limit, volume=volume, book=book), profile, seq)
        traded += volume
        if outcome.fills:
            assert traded > ahead
            assert outcome.fills[0].price == limit
            assert outcome.fills[0].quantity <= traded - ahead
            return
        assert traded <= ahead or volume == 0
        orders = advance(orders, outcome)


@settings(max_examples=200)
@given(
    orders=st.lists(
        st.builds(
            lambda side, quantity, limit, market: an_order(
                side, "market" if market else "limit", quantity, limit_price=None if market else limit
            ),
            sides,
            quantities,
            prices,
            st.booleans(),
        ),
        max_size=8,
    ),
    price=prices,
    volume=volumes,
)
def test_the_ideal_profile_matches_exactly_as_the_exchange_without_a_book(
    orders: list[OpenOrder], price: Decimal, volume: int
) -> None:
    quote = Quote(price=price, open=price, volume=volume)
    expected = match(orders, {SYMBOL: quote}, 9)
    outcome = match_tick(
        orders, {SYMBOL: market_at(price, volume, ProfileName.IDEAL, 9)}, tick_seq=9, tick_ms=0, frictionless=True
    )
    assert outcome.fills == expected and not outcome.expiries and not outcome.changes


@given(side=sides, quantity=quantities, price=prices, volume=st.integers(1, 5_000), profile=frictional)
def test_a_market_order_pays_the_volume_weighted_price_of_the_levels_it_takes(
    side: str, quantity: Decimal, price: Decimal, volume: int, profile: ProfileName
) -> None:
    market = market_at(price, volume, profile, 1)
    outcome = one_tick([an_order(side, "market", quantity)], market, profile)
    levels = market.book.asks if side == "buy" else market.book.bids
    fill = outcome.fills[0]
    want, notional = quantity, D(0)
    for level in levels:
        size = min(want, level.size)
        notional += size * level.price
        want -= size
    assert fill.quantity == quantity - want
    assert abs(fill.price * fill.quantity - notional) <= fill.quantity * D("0.00000001")
    best = levels[0].price
    assert fill.price >= best if side == "buy" else fill.price <= best


def test_a_day_order_ends_at_the_first_tick_of_the_next_day() -> None:
    order = an_order("buy", "limit", D(1), limit_price=D("1.00"), expires_seq=780)
    market = market_at(D("100.00"), 100, ProfileName.REALISTIC, 779)
    assert not one_tick([order], market, ProfileName.REALISTIC, 779).expiries
    assert one_tick([order], market, ProfileName.REALISTIC, 780).expiries[0].order_id == order.id


def test_an_order_does_not_trade_before_its_entry_latency_has_passed() -> None:
    order = an_order("buy", "market", D(1), active_at_ms=5_000)
    market = {SYMBOL: market_at(D("100.00"), 100, ProfileName.REALISTIC, 1)}
    assert not match_tick([order], market, tick_seq=1, tick_ms=4_999, frictionless=False)
    assert match_tick([order], market, tick_seq=2, tick_ms=5_000, frictionless=False).fills
