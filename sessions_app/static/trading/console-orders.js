// The console's order ticket and its orders (docs/protocol.md §4b): one ticket for every order type,
// time in force and class, showing only the fields the chosen ones take, and one table of the
// orders, open ones first, with their stops, trails, queue and fees, each open one with Replace and
// Cancel. The panels are the template's; this fills them from the snapshots ConnectionManager emits.
import { element, errorText, fmt } from "./console-view.js";

const OPEN = new Set(["new", "partially_filled"]);

const number = (value) => (value === "" || value === null || value === undefined ? undefined : Number(value));

/** The `place_order` fields of the form's values: only what the type and class take. */
export function ticketOf(values) {
  const ticket = {
    symbol: values.symbol,
    side: values.side,
    orderType: values.orderType,
    quantity: Number(values.quantity),
  };
  const put = (name, value) => {
    if (value !== undefined) ticket[name] = value;
  };
  if (values.timeInForce && values.timeInForce !== "gtc") ticket.timeInForce = values.timeInForce;
  if (["limit", "stop_limit"].includes(values.orderType)) put("limitPrice", number(values.limitPrice));
  if (["stop", "stop_limit"].includes(values.orderType)) put("stopPrice", number(values.stopPrice));
  if (values.orderType === "trailing_stop") {
    if (values.trailBy === "percent") put("trailPercent", number(values.trail));
    else put("trailAmount", number(values.trail));
  }
  if (values.orderClass && values.orderClass !== "simple") {
    ticket.orderClass = values.orderClass;
    const stopLoss = { stopPrice: number(values.stopLoss) };
    if (number(values.stopLossLimit) !== undefined) stopLoss.limitPrice = number(values.stopLossLimit);
    ticket.stopLoss = stopLoss;
    if (values.orderClass === "bracket") ticket.takeProfit = { limitPrice: number(values.takeProfit) };
  }
  return ticket;
}

/** Open orders first, then the done ones; the newest first in each. */
export function orderRows(orders) {
  return Object.values(orders).sort((a, b) => OPEN.has(b.status) - OPEN.has(a.status) || b.createdAt - a.createdAt);
}

/** How the orders table names an order's type: its prices, trail and class. */
export function describeOrder(o) {
  const parts = [o.orderType.replace("_", " ")];
  if (o.limitPrice != null) parts.push(`limit ${fmt(o.limitPrice)}`);
  if (o.stopPrice != null) parts.push(`stop ${fmt(o.stopPrice)}`);
  if (o.trailAmount != null) parts.push(`trail ${fmt(o.trailAmount)}`);
  if (o.trailPercent != null) parts.push(`trail ${fmt(o.trailPercent)}%`);
  if (o.trailingStopPrice != null) parts.push(`at ${fmt(o.trailingStopPrice)}`);
  if (o.triggered) parts.push("triggered");
  if (o.orderClass && o.orderClass !== "simple") parts.push(o.parentOrderId ? `${o.orderClass} exit` : o.orderClass);
  return parts.join(" · ");
}

/** The `replace_order` fields of an amendment form: what was filled in and differs from the order. */
export function amendmentOf(order, values) {
  const amendment = {};
  for (const [name, field] of [
    ["quantity", "quantity"],
    ["limitPrice", "limitPrice"],
    ["stopPrice", "stopPrice"],
  ]) {
    const value = number(values[field]);
    if (value !== undefined && value !== order[name]) amendment[name] = value;
  }
  return amendment;
}

function input(name, attributes = {}) {
  return element("input", { name, type: "number", step: "any", min: "0", ...attributes });
}

export function installOrders(cm, request) {
  const form = document.querySelector("#ticket");
  const result = document.querySelector("#ticket-result");
  const table = document.querySelector("#orders");
  const submit = form.querySelector("button[type=submit]");

  // A label's data-for names the types and classes its field belongs to; the others are hidden
  // and disabled, so the form neither sends nor validates them.
  const fit = () => {
    const chosen = [form.elements.orderType.value, form.elements.orderClass.value];
    for (const label of form.querySelectorAll("label[data-for]")) {
      const wanted = label.dataset.for.split(" ").some((name) => chosen.includes(name));
      label.hidden = !wanted;
      label.querySelector("input, select").disabled = !wanted;
    }
    const side = form.elements.side.value;
    submit.className = side;
    submit.textContent = side === "buy" ? "Buy" : "Sell";
  };
  form.addEventListener("change", fit);
  fit();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    try {
      const reply = await request("place_order", ticketOf(values));
      result.textContent = `Order ${reply.order.orderId.slice(0, 8)} ${reply.order.status}`;
    } catch (error) {
      result.textContent = errorText(error);
    }
  });

  function replaceForm(order, row) {
    const amend = element("form", { class: "replace" });
    amend.append(
      input("quantity", { value: String(order.quantity), "aria-label": "new quantity" }),
      input("limitPrice", { value: order.limitPrice ?? "", "aria-label": "new limit price" }),
      input("stopPrice", { value: order.stopPrice ?? "", "aria-label": "new stop price" }),
      element("button", { type: "submit" }, "Send"),
    );
    amend.elements.limitPrice.disabled = order.limitPrice == null;
    amend.elements.stopPrice.disabled = order.stopPrice == null || order.triggered;
    amend.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(new FormData(amend).entries());
      try {
        await request("replace_order", { orderId: order.orderId, ...amendmentOf(order, values) });
        result.textContent = `Order ${order.orderId.slice(0, 8)} replaced`;
      } catch (error) {
        result.textContent = errorText(error);
      }
    });
    row.cells[row.cells.length - 1].append(amend);
  }

  cm.addEventListener("exchange_data_status", (event) => {
    const rows = table.tBodies[0];
    rows.replaceChildren();
    let open = 0;
    for (const o of orderRows(event.detail.userOrders)) {
      const row = rows.insertRow();
      row.dataset.order = o.orderId;
      row.className = OPEN.has(o.status) ? "open" : "done";
      const cells = [
        o.orderId.slice(0, 8),
        new Date(o.createdAt).toLocaleTimeString(),
        o.symbol,
        o.side,
        describeOrder(o),
        o.timeInForce ?? "gtc",
        fmt(o.quantity),
        fmt(o.filledQty),
        o.queueAhead == null ? "" : fmt(o.queueAhead),
        fmt(o.fee ?? 0),
        o.status,
      ];
      for (const text of cells) row.insertCell().textContent = text;
      row.cells[3].className = o.side === "buy" ? "up" : "down";
      row.cells[10].className = "order-status";
      const actions = row.insertCell();
      if (!OPEN.has(o.status)) continue;
      open += 1;
      const replace = element("button", { type: "button", class: "secondary" }, "Replace");
      replace.addEventListener("click", () => replaceForm(o, row), { once: true });
      const cancel = element("button", { type: "button", class: "secondary" }, "Cancel");
      cancel.addEventListener("click", () =>
        request("cancel_order", { orderId: o.orderId }).catch((error) => {
          result.textContent = errorText(error); // cancel_too_late: the fill won the race
        }),
      );
      actions.append(replace, cancel);
    }
    document.querySelector("#open-count").textContent = open ? `(${open} open)` : "";
  });
}
