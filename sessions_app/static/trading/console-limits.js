// The console's limits tab: the account's risk limits and the operator's caps
// (GET /api/market/account/limits/), all set at once with `set_risk_limits` (docs/protocol.md §4c).
import { errorText } from "./console-view.js";

const $ = (selector) => document.querySelector(selector);
export const LIMITS = ["maxOrderValue", "maxPositionValue", "maxOpenOrders", "maxLeverage", "dailyLossLimit"];

// The form's limits as `set_risk_limits` takes them: an empty field is no limit (null).
export function limitsOf(values) {
  return Object.fromEntries(LIMITS.map((name) => [name, values[name] === "" || values[name] == null ? null : Number(values[name])]));
}

// What each field shows: the limit set, and as its placeholder the operator's cap (or "none").
export function fieldsOf(view) {
  return Object.fromEntries(
    LIMITS.map((name) => [
      name,
      {
        value: view.limits[name] == null ? "" : String(view.limits[name]),
        placeholder: view.caps[name] == null ? "none" : `cap ${view.caps[name].toLocaleString()}`,
      },
    ]),
  );
}

export function mountLimits(cm, request) {
  const form = $("#limits-form");

  function show(view) {
    for (const [name, field] of Object.entries(fieldsOf(view))) {
      form.elements[name].value = field.value;
      form.elements[name].placeholder = field.placeholder;
    }
    form.dataset.loaded = String(Date.now());
  }

  async function load() {
    if (!cm.token) return;
    try {
      const response = await fetch("/api/market/account/limits/", { headers: { Authorization: `Bearer ${cm.token}` } });
      if (!response.ok) throw new Error(`limits: HTTP ${response.status}`);
      show(await response.json());
    } catch (error) {
      $("#limits-result").textContent = error.message;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(LIMITS.map((name) => [name, form.elements[name].value]));
    try {
      const reply = await request("set_risk_limits", { limits: limitsOf(values) });
      show(reply.riskLimits);
      $("#limits-result").textContent = "Limits saved: orders beyond them are refused.";
    } catch (error) {
      $("#limits-result").textContent = errorText(error);
    }
  });
  cm.addEventListener("connected", load);
}
