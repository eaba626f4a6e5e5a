// The accounts tab's pure parts: each account's flags, the Start button's choices, and what
// `open_account` is sent from the form.
import assert from "node:assert/strict";
import { test } from "node:test";

import { flagsOf, openingOf, startChoices } from "../../sessions_app/static/trading/console-accounts.js";

const main = { accountId: 1, name: "Main", isDefault: true, isCurrent: false, closedAt: null };
const swing = { accountId: 2, name: "Swing", isDefault: false, isCurrent: true, closedAt: null };
const old = { accountId: 3, name: "Old", isDefault: false, isCurrent: false, closedAt: 1_796_000_000_000 };

test("an account's flags say default, current and closed", () => {
  assert.equal(flagsOf(main), "default");
  assert.equal(flagsOf(swing), "current");
  assert.equal(flagsOf(old), "closed");
  assert.equal(flagsOf({ ...main, isCurrent: true }), "default · current");
});

test("start offers the open accounts with the current one chosen, else the default", () => {
  assert.deepEqual(startChoices([main, swing, old]), [
    { value: "1", label: "Main (default)", selected: false },
    { value: "2", label: "Swing", selected: true },
  ]);
  const noneCurrent = startChoices([main, { ...swing, isCurrent: false }]);
  assert.deepEqual(noneCurrent.map((c) => c.selected), [true, false]);
});

test("an empty starting cash or profile is left to the server", () => {
  assert.deepEqual(openingOf({ name: " Swing ", startingCash: "", profile: "" }), { name: "Swing" });
  assert.deepEqual(openingOf({ name: "Big", accountType: "margin", startingCash: "250000", profile: "harsh" }), {
    name: "Big",
    accountType: "margin",
    startingCash: 250000,
    profile: "harsh",
  });
  assert.deepEqual(openingOf({ name: "Plain", accountType: "cash", startingCash: "", profile: "" }), { name: "Plain" });
});
