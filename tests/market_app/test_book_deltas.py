"""Book deltas and checksums (market_app.book_deltas), checked against the Python client's book keeper
(tradesim.books): what the server computes is what a client applies and verifies."""

import zlib

from hypothesis import given
from hypothesis import strategies as st
from tradesim.books import BookKeeper, OrderBook

from market_app.book_deltas import book_checksum, book_delta, number_text
from market_app.liquidity import WireBook


def test_numbers_are_written_as_their_shortest_decimal_without_exponent_or_trailing_zero() -> None:
    assert number_text(101.25) == "101.25"
    assert number_text(300.0) == "300"
    assert number_text(0.5) == "0.5"
    assert number_text(1e-07) == "0.0000001"
    assert number_text(2.5e16) == "25000000000000000"
    assert number_text(0.1 + 0.2) == "0.30000000000000004"


def test_the_checksum_interleaves_the_first_ten_levels_of_each_side() -> None:
    book = {
        "bids": [[100.0 - i, 10.0 + i] for i in range(12)],
        "asks": [[100.5, 3.0], [100.75, 0.25]],
    }
    text = "100:10:100.5:3:99:11:100.75:0.25:" + ":".join(f"{100 - i}:{10 + i}" for i in range(2, 10))
    assert book_checksum(book) == zlib.crc32(text.encode())


def test_an_empty_book_has_the_checksum_of_the_empty_string() -> None:
    assert book_checksum({"bids": [], "asks": []}) == 0


def test_the_checksum_of_the_documented_example_is_the_one_the_browser_library_is_tested_with() -> None:
    # docs/protocol.md's example; tools/js-client/test/order-books.test.mjs expects the same value.
    assert book_checksum({"bids": [[100.0, 10.0]], "asks": [[100.5, 3.0]]}) == 3498124035


prices = st.integers(min_value=1, max_value=400).map(lambda ticks: ticks / 4)
sizes = st.integers(min_value=1, max_value=10**6).map(float)


@st.composite
def books(draw: st.DrawFn) -> WireBook:
    bid_prices = sorted(draw(st.sets(prices, max_size=25)), reverse=True)
    ask_prices = sorted(draw(st.sets(prices, max_size=25)))
    return {
        "bids": [[price, draw(sizes)] for price in bid_prices],
        "asks": [[price, draw(sizes)] for price in ask_prices],
    }


def keeper_holding(symbol: str, seq: int, book: WireBook) -> BookKeeper:
    keeper = BookKeeper()
    snapshot = {"action": "snapshot", "seq": seq, "prevSeq": None, **book, "checksum": book_checksum(book)}
    assert keeper.apply({"books": {symbol: snapshot}}) == ([symbol], [])
    return keeper


@given(books(), books())
def test_a_client_applying_the_delta_holds_the_new_book_and_its_checksum_matches(before: WireBook, after: WireBook):
    keeper = keeper_holding("AAPL", 1, before)
    delta = book_delta(before, after)
    update = {"action": "update", "seq": 2, "prevSeq": 1, **delta, "checksum": book_checksum(after)}
    assert keeper.apply({"books": {"AAPL": update}}) == (["AAPL"], [])
    held = keeper.books["AAPL"]
    assert held.best_bids() == [tuple(level) for level in after["bids"]]
    assert held.best_asks() == [tuple(level) for level in after["asks"]]
    assert held.checksum() == book_checksum(after)


@given(books())
def test_a_delta_between_equal_books_is_empty(book: WireBook) -> None:
    assert book_delta(book, book) == {"bids": [], "asks": []}


def test_an_update_for_another_version_or_with_a_wrong_checksum_puts_the_book_out_of_step() -> None:
    before = {"bids": [[99.0, 5.0]], "asks": [[101.0, 5.0]]}
    after = {"bids": [[99.0, 6.0]], "asks": [[101.0, 5.0]]}
    delta = book_delta(before, after)
    keeper = keeper_holding("AAPL", 7, before)
    gap = {"action": "update", "seq": 9, "prevSeq": 8, **delta, "checksum": book_checksum(after)}
    assert keeper.apply({"books": {"AAPL": gap}}) == ([], ["AAPL"])
    assert "AAPL" not in keeper.books

    keeper = keeper_holding("AAPL", 7, before)
    wrong = {"action": "update", "seq": 8, "prevSeq": 7, **delta, "checksum": book_checksum(before)}
    assert keeper.apply({"books": {"AAPL": wrong}}) == ([], ["AAPL"])


def test_an_order_book_lists_its_best_levels_first() -> None:
    book = OrderBook("AAPL", 1)
    book.apply([[99.0, 1.0], [99.5, 2.0]], [[101.0, 3.0], [100.5, 4.0]])
    assert book.best_bids(1) == [(99.5, 2.0)]
    assert book.best_asks() == [(100.5, 4.0), (101.0, 3.0)]
