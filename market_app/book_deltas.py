"""Books as a snapshot, then deltas: what changed between two books a connection was sent, and the
checksum a client verifies its copy with (docs/protocol.md, "Books as snapshot and deltas").

Pure Python, no models. A book is the wire form `{"bids": [[price, size], ...], "asks": [...]}`,
best first, already cut to the subscribed depth. A delta lists, per side, each level that appeared
or changed size (`[price, size]`) and each that left (`[price, 0]`), so applying it to the previous
book gives the new one exactly: no level is left to fall out of the depth unannounced.

The checksum is CRC-32 (zlib's, unsigned) over the first CHECKSUM_LEVELS levels, interleaved as OKX
does (bid price, bid size, ask price, ask size, level by level; a side that has run out adds
nothing), joined with ':'. Each number is written as its shortest decimal that reads back as the
same double (what Python's repr and JavaScript's String print), with no exponent and no trailing
'.0': 101.25, 0.5, 300, 0.0000001.
"""

from __future__ import annotations

import zlib
from decimal import Decimal

from market_app.liquidity import WireBook

CHECKSUM_LEVELS = 10


def number_text(value: float) -> str:
    """`value` as the checksum writes it (see the module's docstring)."""
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")


def book_checksum(book: WireBook) -> int:
    """The checksum of a book (its first CHECKSUM_LEVELS levels per side)."""
    bids, asks = book["bids"], book["asks"]
    parts: list[str] = []
    for level in range(CHECKSUM_LEVELS):
        if level < len(bids):
            parts += (number_text(bids[level][0]), number_text(bids[level][1]))
        if level < len(asks):
            parts += (number_text(asks[level][0]), number_text(asks[level][1]))
    return zlib.crc32(":".join(parts).encode())


def _side_delta(before: list[list[float]], after: list[list[float]]) -> list[list[float]]:
    old = {price: size for price, size in before}
    changed = [[price, size] for price, size in after if old.get(price) != size]
    kept = {price for price, _ in after}
    return changed + [[price, 0.0] for price, _ in before if price not in kept]


def book_delta(before: WireBook, after: WireBook) -> WireBook:
    """The levels that turn `before` into `after` (both sides empty: nothing changed)."""
    return {"bids": _side_delta(before["bids"], after["bids"]), "asks": _side_delta(before["asks"], after["asks"])}
