// Unit tests of the browser's book keeper (`node --test tests/js`). The checksum vectors are the
// ones tests/market_app/test_book_deltas.py checks the server's checksum against.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BookKeeper, crc32, numberText, OrderBook } from "../src/order-books.js";

test("numbers are written as their shortest decimal without exponent or trailing zero", () => {
  assert.equal(numberText(101.25), "101.25");
  assert.equal(numberText(300), "300");
  assert.equal(numberText(0.5), "0.5");
  assert.equal(numberText(1e-7), "0.0000001");
  assert.equal(numberText(2.5e16), "25000000000000000");
  assert.equal(numberText(1.5e21), "1500000000000000000000");
  assert.equal(numberText(0.1 + 0.2), "0.30000000000000004");
});

test("the checksum is zlib's CRC-32 of the interleaved levels", () => {
  assert.equal(crc32(""), 0);
  assert.equal(crc32("100:10:100.5:3"), 3498124035); // zlib.crc32(b"100:10:100.5:3")
  const book = new OrderBook("AAPL", 1);
  book.apply([[100, 10]], [[100.5, 3]]);
  assert.equal(book.checksum(), 3498124035);
});

const change = (action, seq, prevSeq, bids, asks) => {
  const book = new OrderBook("X", seq);
  book.apply(bids, asks);
  return { action, seq, prevSeq, bids, asks, checksum: book.checksum() };
};

test("a keeper applies a snapshot then an update and lists the best levels first", () => {
  const keeper = new BookKeeper();
  const snapshot = change("snapshot", 5, null, [[99, 1], [98, 2]], [[101, 3]]);
  assert.deepEqual(keeper.apply({ books: { AAPL: snapshot } }), { changed: ["AAPL"], stale: [] });
  const after = new OrderBook("X", 6);
  after.apply([[99, 4], [97, 1]], [[101, 3]]);
  const update = { action: "update", seq: 6, prevSeq: 5, bids: [[99, 4], [97, 1], [98, 0]], asks: [], checksum: after.checksum() };
  assert.deepEqual(keeper.apply({ books: { AAPL: update } }), { changed: ["AAPL"], stale: [] });
  const held = keeper.books.get("AAPL");
  assert.deepEqual(held.bestBids(), [[99, 4], [97, 1]]);
  assert.deepEqual(held.bestAsks(1), [[101, 3]]);
  assert.equal(held.seq, 6);
});

test("an update for another version or with a wrong checksum puts the book out of step", () => {
  const keeper = new BookKeeper();
  keeper.apply({ books: { AAPL: change("snapshot", 5, null, [[99, 1]], [[101, 3]]) } });
  const gap = change("update", 8, 7, [[99, 2]], []);
  assert.deepEqual(keeper.apply({ books: { AAPL: gap } }), { changed: [], stale: ["AAPL"] });
  assert.equal(keeper.books.has("AAPL"), false);
  keeper.apply({ books: { AAPL: change("snapshot", 5, null, [[99, 1]], [[101, 3]]) } });
  const wrong = { ...change("update", 6, 5, [[99, 2]], []), checksum: 1 };
  assert.deepEqual(keeper.apply({ books: { AAPL: wrong } }), { changed: [], stale: ["AAPL"] });
});
