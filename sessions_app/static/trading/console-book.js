// The console's market-depth panels: bid/ask on the price board, a depth ladder and a candle chart
// of the ticket's symbol (a row of the board picks it; a rung of the ladder puts its price in the
// ticket). It asks `subscribe_market` for the books as deltas (the manager keeps them,
// checksum-verified: `cm.books`) and the open candles of every symbol (the board keeps showing them
// all), loads closed bars over REST, and draws plain SVG in the panels' own pixels.
import { fmt } from "./console-view.js";

const SVG = "http://www.w3.org/2000/svg";
const DEPTH = 10;
const INTERVALS = ["1s", "1m", "5m"];
const BARS = 60;

/** Closed bars plus the open one, oldest first, at most `limit`: the open bar replaces its own start. */
export function withOpenBar(bars, open, limit = BARS) {
  if (!open) return bars.slice(-limit);
  const merged = bars.filter((bar) => bar.start < open.start);
  merged.push(open);
  return merged.slice(-limit);
}

/** The ladder's rows, top to bottom: asks from the farthest to the best, then bids from the best down. */
export function ladderRows(book, levels = DEPTH) {
  const asks = book.asks.slice(0, levels).map(([price, size]) => ({ side: "ask", price, size }));
  const bids = book.bids.slice(0, levels).map(([price, size]) => ({ side: "bid", price, size }));
  return [...asks.reverse(), ...bids];
}

function svgNode(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** The candles in a `width` x `height` SVG, with the range's high and low and the last close on the right. */
function candleChart(bars, width, height) {
  const svg = svgNode("svg", { class: "candles", viewBox: `0 0 ${width} ${height}` });
  if (!bars.length) return svg;
  const axis = 54; // room on the right for the price labels
  const low = Math.min(...bars.map((b) => b.low));
  const high = Math.max(...bars.map((b) => b.high));
  const span = high - low || 1;
  const y = (price) => height - 8 - ((price - low) / span) * (height - 16);
  const step = (width - axis) / BARS;
  const first = BARS - bars.length; // the newest bar at the right edge
  bars.forEach((bar, i) => {
    const x = (first + i) * step + step / 2;
    const up = bar.close >= bar.open;
    const color = up ? "var(--up)" : "var(--down)";
    const candle = svgNode("g", { class: `candle ${up ? "up" : "down"}`, "data-start": bar.start });
    candle.append(svgNode("line", { x1: x, x2: x, y1: y(bar.high), y2: y(bar.low), stroke: color }));
    const top = y(Math.max(bar.open, bar.close));
    const body = Math.max(1, y(Math.min(bar.open, bar.close)) - top);
    candle.append(svgNode("rect", { x: x - step * 0.35, y: top, width: step * 0.7, height: body, fill: color }));
    svg.append(candle);
  });
  const last = bars.at(-1).close;
  const label = (price, at, className = "") => {
    const text = svgNode("text", { x: width - axis + 4, y: Math.min(height - 2, Math.max(10, at)), class: className });
    text.textContent = fmt(price);
    return text;
  };
  // The range's high and low, unless the last close's label would cover them.
  for (const [price, at] of [[high, y(high) + 4], [low, y(low)]]) {
    if (Math.abs(at - y(last)) > 14) svg.append(label(price, at));
  }
  const tag = label(last, y(last) + 4, "last");
  const line = { x1: 0, x2: width - axis, y1: y(last), y2: y(last), stroke: "var(--accent)", "stroke-dasharray": "3 3" };
  const box = { x: width - axis, y: Number(tag.getAttribute("y")) - 11, width: axis, height: 14, fill: "var(--accent)" };
  svg.append(svgNode("line", line), svgNode("rect", box), tag);
  return svg;
}

/** A board cell's "price × size", the size on a line of its own under the price. */
function showQuote(cell, price, size) {
  if (price === undefined) {
    cell.textContent = "–";
    return;
  }
  const small = document.createElement("small");
  small.textContent = ` × ${fmt(size)}`;
  cell.replaceChildren(fmt(price), small);
}

export function installBook(cm) {
  const state = { selected: null, interval: "1s", open: {}, closed: [], loading: 0 };
  const ticketSymbol = document.querySelector("#ticket-symbol");
  const chart = document.querySelector("#candle-chart");
  const interval = document.querySelector("#candle-interval");
  interval.append(...INTERVALS.map((name) => new Option(name, name)));

  // The board's rows pick the ticket's symbol; the book and chart follow the ticket.
  const pick = (symbol) => {
    ticketSymbol.value = symbol;
    ticketSymbol.dispatchEvent(new Event("change", { bubbles: true }));
  };
  document.querySelector("#prices tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-symbol]");
    if (row) pick(row.dataset.symbol);
  });
  document.querySelector("#ladder tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    const limit = document.querySelector("#ticket [name=limitPrice]");
    if (row?.dataset.price && limit) limit.value = row.dataset.price;
  });

  function renderBoard(symbols) {
    for (const [symbol, quote] of Object.entries(symbols)) {
      const row = document.querySelector(`#prices tr[data-symbol="${CSS.escape(symbol)}"]`);
      if (!row) continue;
      showQuote(row.querySelector("td.bid"), quote.bid, quote.bidSize);
      showQuote(row.querySelector("td.ask"), quote.ask, quote.askSize);
    }
    if (!state.selected && ticketSymbol.value) select(ticketSymbol.value);
  }

  function renderLadder() {
    const kept = cm.books.books.get(state.selected);
    const book = kept && { bids: kept.bestBids(DEPTH), asks: kept.bestAsks(DEPTH) };
    const body = document.querySelector("#ladder tbody");
    body.replaceChildren();
    const spread = book?.bids.length && book.asks.length ? book.asks[0][0] - book.bids[0][0] : null;
    document.querySelector("#book-spread").textContent = spread === null ? "" : `spread ${fmt(spread)}`;
    if (!book) return;
    const rows = ladderRows(book);
    const biggest = Math.max(1, ...rows.map((r) => r.size));
    for (const { side, price, size } of rows) {
      const row = body.insertRow();
      row.className = side;
      row.dataset.price = String(price);
      row.insertCell().textContent = fmt(price);
      row.cells[0].className = "price";
      row.insertCell().textContent = fmt(size);
      const bar = document.createElement("span");
      bar.className = "depth-bar";
      bar.style.width = `${Math.round((size / biggest) * 100)}%`;
      row.insertCell().append(bar);
    }
  }

  function renderChart() {
    const open = state.open[state.selected]?.[state.interval];
    const bars = withOpenBar(state.closed, open);
    chart.replaceChildren(candleChart(bars, chart.clientWidth || 600, chart.clientHeight || 300));
    chart.dataset.bars = String(bars.length);
  }

  async function loadClosed() {
    const load = ++state.loading;
    state.closed = [];
    if (!cm.token || !state.selected) return renderChart();
    const query = new URLSearchParams({ symbol: state.selected, interval: state.interval, limit: String(BARS) });
    const response = await fetch(`/api/market/candles/?${query}`, { headers: { Authorization: `Bearer ${cm.token}` } });
    if (load !== state.loading || !response.ok) return;
    state.closed = await response.json();
    renderChart();
  }

  function select(symbol) {
    state.selected = symbol;
    document.querySelector("#book-symbol").textContent = symbol;
    document.querySelector("#chart .symbol").textContent = symbol;
    for (const row of document.querySelectorAll("#prices tbody tr")) {
      row.classList.toggle("selected", row.dataset.symbol === symbol);
    }
    renderLadder();
    loadClosed();
  }

  cm.addEventListener("connected", () => {
    // A new connection starts with the plain stream: ask again for every symbol's depth and candles.
    const subscription = { symbols: null, depth: DEPTH, bookDeltas: true, candles: INTERVALS };
    cm.request("subscribe_market", subscription).catch(() => {});
  });
  cm.addEventListener("exchange_data_status", (e) => renderBoard(e.detail.symbols));
  cm.addEventListener("exchange_data", (e) => {
    const tick = e.detail;
    renderBoard(tick.symbols);
    for (const [symbol, bars] of Object.entries(tick.candles ?? {})) {
      const before = state.open[symbol]?.[state.interval];
      const now = bars[state.interval];
      // The open bar of the selected symbol rolled over: the one before is now closed.
      if (symbol === state.selected && before && now && now.start > before.start) state.closed.push(before);
      state.open[symbol] = bars;
    }
    renderChart();
  });
  cm.addEventListener("orderbook", (e) => {
    if (e.detail.symbol === state.selected) renderLadder();
  });
  interval.addEventListener("change", () => {
    state.interval = interval.value;
    loadClosed();
  });
  ticketSymbol.addEventListener("change", () => select(ticketSymbol.value));
  new ResizeObserver(renderChart).observe(chart); // drawn in its pixels: again when they change
}
