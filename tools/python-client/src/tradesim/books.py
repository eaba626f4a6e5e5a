"""Order books kept from the `books` of `exchange_data` (and `book` replies): a snapshot, then updates,
each checked by its checksum
(docs/protocol.md, "Books as snapshot and deltas"). `Client` keeps one `BookKeeper` and asks for a
fresh snapshot (`request_book`) of any book that falls out of step."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CHECKSUM_LEVELS = 10


def number_text(value: float) -> str:
    """A number as the checksum writes it: the shortest decimal that reads back as the same double,
    no exponent, no trailing '.0'."""
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")


@dataclass
class OrderBook:
    """One symbol's book: `seq` is its version (the tick it last changed at)."""

    symbol: str
    seq: int
    bids: dict[float, float] = field(default_factory=dict)  # price -> size
    asks: dict[float, float] = field(default_factory=dict)

    def best_bids(self, levels: int | None = None) -> list[tuple[float, float]]:
        """(price, size) from the highest bid down."""
        return [(price, self.bids[price]) for price in sorted(self.bids, reverse=True)[:levels]]

    def best_asks(self, levels: int | None = None) -> list[tuple[float, float]]:
        """(price, size) from the lowest ask up."""
        return [(price, self.asks[price]) for price in sorted(self.asks)[:levels]]

    def checksum(self) -> int:
        bids, asks = self.best_bids(CHECKSUM_LEVELS), self.best_asks(CHECKSUM_LEVELS)
        parts: list[str] = []
        for level in range(CHECKSUM_LEVELS):
            for side in (bids, asks):
                if level < len(side):
                    parts += (number_text(side[level][0]), number_text(side[level][1]))
        return zlib.crc32(":".join(parts).encode())

    def apply(self, bids: Iterable[Iterable[float]], asks: Iterable[Iterable[float]]) -> None:
        """Set the levels given; a size of 0 removes its level."""
        for levels, changes in ((self.bids, bids), (self.asks, asks)):
            for price, size in changes:
                if size:
                    levels[price] = size
                else:
                    levels.pop(price, None)


class BookKeeper:
    """The books of one connection's `exchange_data.books` and `book` replies, by symbol."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}

    def apply(self, message: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """Apply the `books` of a message (`exchange_data` or a `book` reply). Returns the symbols
        whose book it changed, and those now out of step (an update for a book not held, or a checksum
        that does not match): dropped, to be asked for again with `request_book`."""
        changed: list[str] = []
        stale: list[str] = []
        for symbol, change in message["books"].items():
            if change["action"] == "snapshot":
                book = OrderBook(symbol, change["seq"])
            else:
                held = self.books.get(symbol)
                if held is None or held.seq != change["prevSeq"]:
                    self.books.pop(symbol, None)
                    stale.append(symbol)
                    continue
                book = held
            book.apply(change["bids"], change["asks"])
            if book.checksum() != change["checksum"]:
                self.books.pop(symbol, None)
                stale.append(symbol)
                continue
            book.seq = change["seq"]
            self.books[symbol] = book
            changed.append(symbol)
        return changed, stale

    def clear(self) -> None:
        self.books.clear()
