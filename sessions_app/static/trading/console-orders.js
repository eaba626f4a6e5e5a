// The console's exchange panels (docs/protocol.md §4b): a ticket with every order type, time in force
// and class, the realism profile to start the simulator with, and the open orders with their stops,
// trails, queue and fees, each with Replace and Cancel. Built on ConnectionManager's requests and
// the snapshots it emits; the page's own ticket and order list stay as they are.

const TYPES = ["market", "limit", "stop", "stop_limit", "trailing_stop"];
const TIFS = ["gtc", "day", "ioc", "fok"];
const CLASSES = ["simple", "bracket", "oco"];
const PROFILES = ["realistic", "ideal", "harsh"];
const OPEN = new Set(["new", "partially_filled"]);
const fmt = (n) => (n ?? 0).toLocaleString(undefined, { maximumFractionDigits: 8 });

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

/** How the open-orders list names an order's type: its prices, trail and class. */
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

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function select(name, options) {
  const node = element("select", { name });
  for (const option of options) node.append(new Option(option, option));
  return node;
}

function field(label, control) {
  const node = element("label", {}, `${label} `);
  node.append(control);
  return node;
}

function input(name, attributes = {}) {
  return element("input", { name, type: "number", step: "any", min: "0", ...attributes });
}

function errorText(error) {
  return error?.serverMessage ? `${error.code}: ${error.serverMessage.message ?? ""}` : String(error?.message ?? error);
}

export function installOrders(cm) {
  const card = element("section", { class: "card", id: "exchange-ticket-card" });
  card.append(element("h2", {}, "Exchange order"));
  const form = element("form", { id: "exchange-ticket" });
  const symbol = select("symbol", []);
  const type = select("orderType", TYPES);
  const klass = select("orderClass", CLASSES);
  form.append(
    field("Symbol", symbol),
    field("Side", select("side", ["buy", "sell"])),
    field("Type", type),
    field("Time in force", select("timeInForce", TIFS)),
    field("Quantity", input("quantity", { value: "1", min: "0.00000001", required: "" })),
    field("Limit price", input("limitPrice")),
    field("Stop price", input("stopPrice")),
    field("Trail", input("trail")),
    field("Trail by", select("trailBy", ["amount", "percent"])),
    field("Class", klass),
    field("Take profit", input("takeProfit")),
    field("Stop loss", input("stopLoss")),
    field("Stop-loss limit", input("stopLossLimit")),
    element("button", { type: "submit" }, "Place"),
  );
  const result = element("p", { id: "exchange-ticket-result", role: "status" });
  const profile = select("profile", PROFILES);
  profile.id = "start-profile";
  const start = element("button", { type: "button", id: "start-with-profile", class: "secondary" }, "Start with profile");
  card.append(form, result, field("Profile", profile), start);

  const list = element("section", { class: "card wide", id: "exchange-orders-card" });
  list.append(element("h2", {}, "Open orders (exchange)"));
  const table = element("table", { id: "exchange-orders" });
  table.innerHTML =
    "<thead><tr><th>Order</th><th>Symbol</th><th>Side</th><th>Type</th><th>TIF</th><th>Qty</th>" +
    "<th>Filled</th><th>Queue ahead</th><th>Fee</th><th>Status</th><th></th></tr></thead><tbody></tbody>";
  const profileNote = element("p", { id: "exchange-profile" });
  list.append(profileNote, table);

  const anchor = document.querySelector("#ticket-card") ?? document.querySelector("main");
  anchor.after(card);
  card.after(list);

  const enable = () => {
    const t = type.value;
    const c = klass.value;
    form.elements.limitPrice.disabled = !["limit", "stop_limit"].includes(t);
    form.elements.stopPrice.disabled = !["stop", "stop_limit"].includes(t);
    form.elements.trail.disabled = form.elements.trailBy.disabled = t !== "trailing_stop";
    form.elements.takeProfit.disabled = c !== "bracket";
    form.elements.stopLoss.disabled = form.elements.stopLossLimit.disabled = c === "simple";
  };
  type.addEventListener("change", enable);
  klass.addEventListener("change", enable);
  enable();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    try {
      const reply = await cm.request("place_order", ticketOf(values));
      result.textContent = `Order ${reply.order.orderId.slice(0, 8)} ${reply.order.status}`;
    } catch (error) {
      result.textContent = errorText(error);
    }
  });
  start.addEventListener("click", async () => {
    try {
      const reply = await cm.request("start_simulator", { profile: profile.value });
      result.textContent = `Simulator ${reply.status} (${reply.profile ?? profile.value})`;
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
        await cm.request("replace_order", { orderId: order.orderId, ...amendmentOf(order, values) });
        result.textContent = `Order ${order.orderId.slice(0, 8)} replaced`;
      } catch (error) {
        result.textContent = errorText(error);
      }
    });
    row.cells[row.cells.length - 1].append(amend);
  }

  cm.addEventListener("exchange_data_status", (event) => {
    const status = event.detail;
    for (const name of Object.keys(status.symbols)) {
      if (![...symbol.options].some((option) => option.value === name)) symbol.append(new Option(name, name));
    }
    profileNote.textContent = status.profile ? `Profile: ${status.profile}` : "";
    const rows = table.tBodies[0];
    rows.replaceChildren();
    const open = Object.values(status.userOrders).filter((o) => OPEN.has(o.status));
    for (const o of open.sort((a, b) => b.createdAt - a.createdAt)) {
      const row = rows.insertRow();
      row.dataset.order = o.orderId;
      const cells = [
        o.orderId.slice(0, 8),
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
      const actions = row.insertCell();
      const replace = element("button", { type: "button", class: "secondary" }, "Replace");
      replace.addEventListener("click", () => replaceForm(o, row), { once: true });
      const cancel = element("button", { type: "button", class: "secondary" }, "Cancel");
      cancel.addEventListener("click", () =>
        cm.request("cancel_order", { orderId: o.orderId }).catch((error) => {
          result.textContent = errorText(error); // cancel_too_late: the fill won the race
        }),
      );
      actions.append(replace, cancel);
    }
  });
}
