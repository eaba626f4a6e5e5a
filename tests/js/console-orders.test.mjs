// Unit tests of the console's exchange panels' pure parts (`node --test tests/js/`).
import assert from "node:assert/strict";
import { test } from "node:test";

import { amendmentOf, describeOrder, orderRows, ticketOf } from "../../sessions_app/static/trading/console-orders.js";

const base = { symbol: "AAPL", side: "buy", quantity: "10", timeInForce: "gtc", orderClass: "simple" };

test("a plain market ticket is the spec's", () => {
  assert.deepEqual(ticketOf({ ...base, orderType: "market", limitPrice: "5", stopPrice: "6" }), {
    symbol: "AAPL",
    side: "buy",
    orderType: "market",
    quantity: 10,
  });
});

test("a stop limit day order carries both prices and its time in force", () => {
  const ticket = ticketOf({ ...base, orderType: "stop_limit", limitPrice: "101", stopPrice: "100", timeInForce: "day" });
  assert.deepEqual(ticket, { ...ticket, orderType: "stop_limit", limitPrice: 101, stopPrice: 100, timeInForce: "day" });
});

test("a trailing stop trails by amount or percent, never both", () => {
  const percent = ticketOf({ ...base, side: "sell", orderType: "trailing_stop", trail: "2", trailBy: "percent" });
  assert.equal(percent.trailPercent, 2);
  assert.equal(percent.trailAmount, undefined);
  assert.equal(ticketOf({ ...base, orderType: "trailing_stop", trail: "0.5", trailBy: "amount" }).trailAmount, 0.5);
});

test("a bracket carries its take-profit and stop-loss, an oco only the stop-loss", () => {
  const bracket = ticketOf({ ...base, orderType: "market", orderClass: "bracket", takeProfit: "110", stopLoss: "90" });
  assert.deepEqual(bracket.takeProfit, { limitPrice: 110 });
  assert.deepEqual(bracket.stopLoss, { stopPrice: 90 });
  const oco = ticketOf({ ...base, side: "sell", orderType: "limit", limitPrice: "110", orderClass: "oco", stopLoss: "90", stopLossLimit: "89" });
  assert.equal(oco.takeProfit, undefined);
  assert.deepEqual(oco.stopLoss, { stopPrice: 90, limitPrice: 89 });
});

test("an order is described by its prices, trail and class", () => {
  assert.equal(
    describeOrder({ orderType: "trailing_stop", trailPercent: 1.5, trailingStopPrice: 98.5, orderClass: "simple" }),
    "trailing stop · trail 1.5% · at 98.5",
  );
  assert.equal(describeOrder({ orderType: "limit", limitPrice: 110, orderClass: "bracket", parentOrderId: "x" }), "limit · limit 110 · bracket exit");
});

test("an amendment sends only what changed", () => {
  const order = { quantity: 10, limitPrice: 100, stopPrice: null };
  assert.deepEqual(amendmentOf(order, { quantity: "10", limitPrice: "101", stopPrice: "" }), { limitPrice: 101 });
  assert.deepEqual(amendmentOf(order, { quantity: "5", limitPrice: "100" }), { quantity: 5 });
});

test("the orders table lists the open orders first, then the done ones, the newest first in each", () => {
  const orders = {
    a: { orderId: "a", status: "filled", createdAt: 4 },
    b: { orderId: "b", status: "new", createdAt: 1 },
    c: { orderId: "c", status: "canceled", createdAt: 2 },
    d: { orderId: "d", status: "partially_filled", createdAt: 3 },
  };
  assert.deepEqual(orderRows(orders).map((o) => o.orderId), ["d", "b", "a", "c"]);
});
