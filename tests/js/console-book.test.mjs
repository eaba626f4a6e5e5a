// Unit tests of the console's book panels' pure parts (`node --test tests/js/`).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ladderRows, withOpenBar } from "../../sessions_app/static/trading/console-book.js";

const bar = (start, close = 1) => ({ start, open: 1, high: 2, low: 0.5, close, volume: 1 });

test("the open bar follows the closed ones and replaces a stored bar of its own start", () => {
  const merged = withOpenBar([bar(0), bar(1000), bar(2000, 9)], bar(2000, 3));
  assert.deepEqual(merged.map((b) => [b.start, b.close]), [[0, 1], [1000, 1], [2000, 3]]);
});

test("the chart keeps only the newest bars", () => {
  const bars = Array.from({ length: 70 }, (_, i) => bar(i * 1000));
  assert.equal(withOpenBar(bars, bar(70_000)).length, 60);
  assert.equal(withOpenBar(bars, undefined).at(-1).start, 69_000);
});

test("the ladder shows asks from the farthest down to the best, then bids from the best down", () => {
  const book = { bids: [[9.9, 1], [9.8, 2], [9.7, 3]], asks: [[10.1, 4], [10.2, 5], [10.3, 6]] };
  assert.deepEqual(
    ladderRows(book, 2).map((r) => `${r.side} ${r.price}`),
    ["ask 10.2", "ask 10.1", "bid 9.9", "bid 9.8"],
  );
});
