// The trading console at `/`: a thin view over ConnectionManager and the protocol's messages.
// The layout is the template's (console.html); each console-*.js module fills its panels.
import { installBook } from "./console-book.js";
import { installOrders } from "./console-orders.js";
import { ConnectionManager } from "./client/connection-manager.js";
import { mountAccounts } from "./console-accounts.js";
import { mountJournal } from "./console-journal.js";
import { mountLimits } from "./console-limits.js";
import { installSimulator } from "./console-simulator.js";
import { errorText, fmt } from "./console-view.js";

const $ = (selector) => document.querySelector(selector);
const money = (n) => (n ?? 0).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const HISTORY = 60;

// Sockets open with single-use tickets: the long-lived token never appears in a URL.
const cm = new ConnectionManager({ useTickets: true });
window.connectionManager = cm; // for the browser tests and the curious
mountJournal(cm, send); // the performance tab (console-journal.js)
mountLimits(cm, send); // the limits tab (console-limits.js)
mountAccounts(cm, send); // the accounts tab and the Start button's account (console-accounts.js)
const history = new Map(); // symbol -> recent prices

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("#log").prepend(item);
  while ($("#log").children.length > 100) $("#log").lastChild.remove();
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function sparkline(values) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 20");
  svg.setAttribute("preserveAspectRatio", "none");
  if (values.length > 1) {
    const low = Math.min(...values);
    const span = Math.max(...values) - low || 1;
    const points = values.map((v, i) => `${(i / (values.length - 1)) * 100},${19 - ((v - low) / span) * 18}`);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", values.at(-1) >= values[0] ? "#0a7d32" : "#c0262d");
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  return svg;
}

// --- Rendering ---------------------------------------------------------------------------

function renderPrices(symbols) {
  for (const [symbol, quote] of Object.entries(symbols)) {
    const values = history.get(symbol) ?? [];
    values.push(quote.price);
    if (values.length > HISTORY) values.shift();
    history.set(symbol, values);
    let row = document.querySelector(`#prices tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!row) {
      row = $("#prices tbody").insertRow();
      row.dataset.symbol = symbol;
      // Bid and ask are console-book.js's to fill.
      for (const name of ["symbol", "price", "change", "bid", "ask", "volume", "trend"]) row.insertCell().className = name;
      const option = new Option(symbol, symbol);
      $("#ticket-symbol").append(option);
    }
    const [name, last, change, , , volume, trend] = row.cells;
    name.textContent = symbol;
    last.textContent = fmt(quote.price);
    change.textContent = `${quote.change >= 0 ? "+" : ""}${fmt(quote.change)}`;
    change.className = `change ${quote.change >= 0 ? "up" : "down"}`;
    volume.textContent = quote.volume.toLocaleString(undefined, { notation: "compact" });
    volume.title = quote.volume.toLocaleString();
    trend.replaceChildren(sparkline(values));
  }
}

function renderSnapshot(status) {
  renderPrices(status.symbols);
  $("#cash").textContent = money(status.account.cash);
  $("#equity").textContent = money(status.account.equity);
  $("#reserved").textContent = money(status.account.reservedCash);
  $("#buying-power").textContent = money(status.account.buyingPower);
  $("#buying-power").title =
    status.account.marginExcess == null
      ? "Free cash (a cash account)"
      : `Margin excess ${money(status.account.marginExcess)} (initial ${money(status.account.initialMargin)}, maintenance ${money(status.account.maintenanceMargin)})`;
  const positions = $("#positions tbody");
  positions.replaceChildren();
  for (const p of Object.values(status.userPositions)) {
    const row = positions.insertRow();
    row.dataset.symbol = p.symbol;
    cell(row, p.symbol);
    cell(row, fmt(p.quantity), "quantity");
    cell(row, fmt(p.averagePrice));
    cell(row, fmt(p.lastPrice));
    cell(row, money(p.value));
    cell(row, money(p.realizedPnl), p.realizedPnl >= 0 ? "up" : "down");
    cell(row, money(p.unrealizedPnl), p.unrealizedPnl >= 0 ? "up" : "down");
  }
  refreshFills();
}

async function refreshFills() {
  if (!cm.token) return;
  const response = await fetch("/api/market/fills/", { headers: { Authorization: `Bearer ${cm.token}` } });
  if (!response.ok) return;
  const rows = $("#fills tbody");
  rows.replaceChildren();
  for (const f of (await response.json()).slice(0, 50)) {
    const row = rows.insertRow();
    cell(row, new Date(f.createdAt).toLocaleTimeString());
    cell(row, f.symbol);
    cell(row, f.side);
    cell(row, fmt(f.quantity));
    cell(row, fmt(f.price));
  }
}

function renderSession(connected) {
  $("#session-id").textContent = connected.sessionId;
  $("#device-id").textContent = connected.deviceId;
  $("#session-status").textContent = connected.sessionStatus;
  $("#session-expires").textContent = new Date(connected.expiresAt).toLocaleString();
}

// Every request the console makes, logged with its outcome; the modules are handed this one.
async function send(type, payload = {}) {
  try {
    const reply = await cm.request(type, payload);
    log(`${type} → ${reply.type}`);
    return reply;
  } catch (error) {
    const text = errorText(error);
    log(`${type} failed: ${text}`);
    throw error;
  }
}

// --- Events from the connection ------------------------------------------------------------

cm.addEventListener("state", (e) => {
  $("#conn-state").textContent = e.detail.state;
  $("#conn-state").dataset.state = e.detail.state;
  log(`state: ${e.detail.state}`);
});
cm.addEventListener("quality", (e) => {
  $("#quality").textContent = e.detail.quality;
  $("#rtt").textContent = e.detail.rttMs === null ? "missed" : `${Math.round(e.detail.rttMs)} ms`;
});
cm.addEventListener("connected", (e) => {
  renderSession(e.detail);
  $("#login").hidden = true;
  $("#app").hidden = false;
  log(`connected (session ${e.detail.resumed ? "resumed" : "new"})`);
});
cm.addEventListener("resumed", (e) => log(`reconnect: ${e.detail.success ? "session resumed" : e.detail.message}`));
cm.addEventListener("exchange_data", (e) => renderPrices(e.detail.symbols));
cm.addEventListener("exchange_data_status", (e) => renderSnapshot(e.detail));
cm.addEventListener("simulator_status_update", (e) =>
  log(`simulator ${e.detail.simulatorStatus}${e.detail.reason ? ` (${e.detail.reason})` : ""}`),
);
cm.addEventListener("shutdown", (e) => log(`server shutting down; back in ${e.detail.reconnectAfterMs} ms`));
cm.addEventListener("device_id_invalidated", (e) => log(`device invalidated: ${e.detail.reason ?? ""}`));
cm.addEventListener("connection_replaced", () => log("another connection of this device took over"));
cm.addEventListener("ended", (e) => {
  const reasons = {
    device_rejected: "This device was invalidated. Log in again to use a new one.",
    connection_replaced: "This device connected again elsewhere; this page stopped.",
    auth_failed: "Your login expired or was revoked. Log in again.",
    session_stopped: "The session was stopped.",
    gave_up: "The server could not be reached.",
  };
  $("#ended").textContent = `Disconnected: ${reasons[e.detail.reason] ?? e.detail.reason}`;
  $("#ended").hidden = false;
  $("#ended").dataset.reason = e.detail.reason;
  log(`ended: ${e.detail.reason}`);
});

// --- Controls -------------------------------------------------------------------------------

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $("#login-error").textContent = "";
  $("#ended").hidden = true;
  try {
    await cm.connect({ username: form.get("username"), password: form.get("password") });
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
});
$("#disconnect").addEventListener("click", () => cm.close());

// The wide pane's tabs: orders, performance, limits, accounts. As WAI-ARIA's tabs pattern: a click or the arrow keys
// (Home, End too) choose one, and only the chosen one is in the Tab order.
const tabs = [...document.querySelectorAll("#activity [role=tab]")];
function chooseTab(tab) {
  for (const other of tabs) {
    other.setAttribute("aria-selected", String(other === tab));
    other.tabIndex = other === tab ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = other !== tab;
  }
}
const TAB_KEYS = { ArrowRight: 1, ArrowLeft: -1, Home: "first", End: "last" };
for (const tab of tabs) {
  tab.addEventListener("click", () => chooseTab(tab));
  tab.addEventListener("keydown", (event) => {
    const move = TAB_KEYS[event.key];
    if (move === undefined) return;
    event.preventDefault();
    const at = tabs.indexOf(tab);
    const next = move === "first" ? tabs[0] : move === "last" ? tabs.at(-1) : tabs[(at + move + tabs.length) % tabs.length];
    chooseTab(next);
    next.focus();
  });
}
chooseTab(tabs.find((tab) => tab.getAttribute("aria-selected") === "true") ?? tabs[0]);

installBook(cm); // bid/ask on the board, the depth ladder and the candle chart
installOrders(cm, send); // the ticket (every type, time in force and class) and the orders, open and done
installSimulator(cm, send); // start and stop: the market (shared, replay, synthetic), the profile, the clock
