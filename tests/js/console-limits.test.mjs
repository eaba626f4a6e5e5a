// The limits tab's pure parts: what `set_risk_limits` is sent from the form, and what each field shows.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fieldsOf, limitsOf } from "../../sessions_app/static/trading/console-limits.js";

test("an empty field is sent as no limit and a filled one as its number", () => {
  const form = { maxOrderValue: "2500.5", maxPositionValue: "", maxOpenOrders: "4", maxLeverage: "", dailyLossLimit: "750" };
  assert.deepEqual(limitsOf(form), {
    maxOrderValue: 2500.5,
    maxPositionValue: null,
    maxOpenOrders: 4,
    maxLeverage: null,
    dailyLossLimit: 750,
  });
});

test("each field shows the limit set and the operator's cap or none as its placeholder", () => {
  const view = {
    limits: { maxOrderValue: 1000, maxPositionValue: null, maxOpenOrders: null, maxLeverage: 1.5, dailyLossLimit: null },
    caps: { maxOrderValue: 50000, maxPositionValue: null, maxOpenOrders: 20, maxLeverage: null, dailyLossLimit: 900 },
  };
  const fields = fieldsOf(view);
  assert.equal(fields.maxOrderValue.value, "1000");
  assert.match(fields.maxOrderValue.placeholder, /^cap 50.?000$/);
  assert.deepEqual(fields.maxPositionValue, { value: "", placeholder: "none" });
  assert.deepEqual(fields.maxOpenOrders, { value: "", placeholder: "cap 20" });
  assert.equal(fields.maxLeverage.value, "1.5");
  assert.deepEqual(fields.dailyLossLimit, { value: "", placeholder: "cap 900" });
});
