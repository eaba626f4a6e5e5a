"""Matching orders against a tick and the accounting of a fill: pure functions, no database."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from market_app.accounting import FillIntent, OpenOrder, PositionState, apply_fill, order_average_price
from market_app.prices import Quote
from tests.support.reference_matcher import match

D = Decimal


def order(
    symbol: str = "AAPL",
    *,
    side: str = "buy",
    order_type: str = "market",
    quantity: str = "10",
    filled_qty: str = "0",
    limit_price: str | None = None,
) -> OpenOrder:
    return OpenOrder(
        id=uuid.uuid4(),
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=D(quantity),
        filled_qty=D(filled_qty),
        limit_price=None if limit_price is None else D(limit_price),
    )


def tick(price: str, volume: int = 1_000, open_: str = "100") -> Quote:
    return Quote(price=D(price), open=D(open_), volume=volume)


# --- match ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_market_order_fills_entirely_at_the_ticks_price(side: str) -> None:
    market = order(side=side, quantity="5")
    assert match([market], {"AAPL": tick("101.25")}, 3) == [
        FillIntent(order_id=market.id, quantity=D(5), price=D("101.25"), tick_seq=3)
    ]


@pytest.mark.parametrize(("price", "fills"), [("100.00", True), ("99.50", True), ("100.01", False)])
def test_a_limit_buy_fills_at_the_ticks_price_only_when_it_is_at_or_below_the_limit(price: str, fills: bool) -> None:
    limit_buy = order(order_type="limit", limit_price="100.00")
    expected = [FillIntent(limit_buy.id, D(10), D(price), 1)] if fills else []
    assert match([limit_buy], {"AAPL": tick(price)}, 1) == expected


@pytest.mark.parametrize(("price", "fills"), [("100.00", True), ("100.50", True), ("99.99", False)])
def test_a_limit_sell_fills_at_the_ticks_price_only_when_it_is_at_or_above_the_limit(price: str, fills: bool) -> None:
    limit_sell = order(side="sell", order_type="limit", limit_price="100.00")
    expected = [FillIntent(limit_sell.id, D(10), D(price), 1)] if fills else []
    assert match([limit_sell], {"AAPL": tick(price)}, 1) == expected


def test_an_order_larger_than_the_ticks_volume_fills_partially() -> None:
    large = order(quantity="1500")
    assert match([large], {"AAPL": tick("100", volume=1_000)}, 4) == [FillIntent(large.id, D(1_000), D(100), 4)]


def test_the_ticks_volume_bounds_the_total_filled_for_its_symbol_oldest_order_first() -> None:
    oldest, middle, newest = order(quantity="600"), order(side="sell", quantity="600"), order(quantity="1")
    other_symbol = order("MSFT", quantity="700")
    quotes = {"AAPL": tick("100", volume=1_000), "MSFT": tick("400", volume=1_000)}
    assert match([oldest, middle, other_symbol, newest], quotes, 2) == [
        FillIntent(oldest.id, D(600), D(100), 2),
        FillIntent(middle.id, D(400), D(100), 2),
        FillIntent(other_symbol.id, D(700), D(400), 2),
    ]


def test_an_order_fills_only_what_remains_of_it() -> None:
    half_done = order(quantity="10", filled_qty="7")
    assert match([half_done], {"AAPL": tick("100")}, 5) == [FillIntent(half_done.id, D(3), D(100), 5)]


def test_a_tick_without_volume_fills_nothing() -> None:
    assert match([order(), order(order_type="limit", limit_price="200")], {"AAPL": tick("100", volume=0)}, 1) == []


def test_an_order_for_a_symbol_not_in_the_tick_is_left_alone() -> None:
    msft = order("MSFT")
    aapl = order("AAPL")
    assert match([msft, aapl], {"AAPL": tick("100")}, 1) == [FillIntent(aapl.id, D(10), D(100), 1)]


# --- apply_fill ----------------------------------------------------------------------------------------------


def test_a_buy_into_an_empty_position_costs_quantity_times_price() -> None:
    effect = apply_fill(PositionState(), side="buy", quantity=D(10), price=D("100.25"))
    assert effect.position == PositionState(quantity=D(10), average_price=D("100.25"), realized_pnl=D(0))
    assert effect.cash_delta == D("-1002.50")


def test_a_buy_adds_to_the_position_at_the_volume_weighted_average_price() -> None:
    held = PositionState(quantity=D(10), average_price=D(100), realized_pnl=D(7))
    effect = apply_fill(held, side="buy", quantity=D(30), price=D(120))
    assert effect.position == PositionState(quantity=D(40), average_price=D(115), realized_pnl=D(7))
    assert effect.cash_delta == D(-3600)


def test_the_average_price_is_rounded_to_eight_decimals() -> None:
    effect = apply_fill(PositionState(D(1), D(1)), side="buy", quantity=D(2), price=D(2))
    assert effect.position.average_price == D("1.66666667")


@pytest.mark.parametrize(("price", "realized"), [("120", "85"), ("90", "-35")])
def test_a_sell_realizes_the_difference_to_the_average_keeps_the_average_and_returns_cash(
    price: str, realized: str
) -> None:
    held = PositionState(quantity=D(10), average_price=D(100), realized_pnl=D(5))
    effect = apply_fill(held, side="sell", quantity=D(4), price=D(price))
    assert effect.position == PositionState(quantity=D(6), average_price=D(100), realized_pnl=D(realized))
    assert effect.cash_delta == D(4) * D(price)


def test_selling_the_whole_position_resets_its_average_and_keeps_the_realized_profit() -> None:
    effect = apply_fill(PositionState(D(10), D(100), D(0)), side="sell", quantity=D(10), price=D(103))
    assert effect.position == PositionState(quantity=D(0), average_price=D(0), realized_pnl=D(30))
    assert effect.cash_delta == D(1030)


def test_selling_more_than_the_position_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the position"):
        apply_fill(PositionState(D(10), D(100)), side="sell", quantity=D("10.00000001"), price=D(100))


def test_a_margin_accounts_sell_beyond_the_position_opens_a_short_at_its_price() -> None:
    effect = apply_fill(PositionState(D(4), D(100), D(0)), side="sell", quantity=D(10), price=D(110), short=True)
    assert effect.position == PositionState(quantity=D(-6), average_price=D(110), realized_pnl=D(40))
    assert effect.cash_delta == D(1100)  # the sale's proceeds, the short's too


def test_a_short_grows_at_the_volume_weighted_average_and_a_buy_covers_it() -> None:
    short = apply_fill(PositionState(D(-10), D(100), D(0)), side="sell", quantity=D(10), price=D(90), short=True)
    assert short.position == PositionState(quantity=D(-20), average_price=D(95), realized_pnl=D(0))
    covered = apply_fill(short.position, side="buy", quantity=D(5), price=D(80), fee=D(1), short=True)
    # A short gains what the price fell below its average: (95 - 80) x 5, less the fee.
    assert covered.position == PositionState(quantity=D(-15), average_price=D(95), realized_pnl=D(74))
    assert covered.cash_delta == D(-401)
    flipped = apply_fill(covered.position, side="buy", quantity=D(20), price=D(100), short=True)
    assert flipped.position == PositionState(quantity=D(5), average_price=D(100), realized_pnl=D(74) - D(75))
    assert flipped.cash_delta == D(-2000)


# --- order_average_price -------------------------------------------------------------------------------------


def test_the_first_fill_sets_the_orders_average_price() -> None:
    assert order_average_price(D(0), None, D(4), D("189.50")) == D("189.50")


def test_the_orders_average_price_is_weighted_by_the_quantity_of_each_fill() -> None:
    assert order_average_price(D(4), D("189.50"), D(6), D(190)) == D("189.80")


def test_the_orders_average_price_is_rounded_to_eight_decimals() -> None:
    assert order_average_price(D(1), D(1), D(2), D(2)) == D("1.66666667")
