// The console's market-depth panels: bid/ask on the price board, a depth ladder and a candle chart
// for the selected symbol. It asks `subscribe_market` for the books as deltas (the manager keeps
// them, checksum-verified: `cm.books`) and the open candles of every symbol (the board keeps showing
// them all), loads closed bars over REST, and draws plain SVG.

const SVG = "http://www.w3.org/2000/svg";
const DEPTH = 10;
const INTERVALS = ["1s", "1m", "5m"];
const BARS = 60;
const fmt = (n) => (n ?? 0).toLocaleString(undefined, { maximumFractionDigits: 8 });

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

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function svgNode(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function candleChart(bars) {
  const width = 600;
  const height = 180;
  const svg = svgNode("svg", { class: "candles", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  if (!bars.length) return svg;
  const low = Math.min(...bars.map((b) => b.low));
  const span = Math.max(...bars.map((b) => b.high)) - low || 1;
  const y = (price) => height - 4 - ((price - low) / span) * (height - 8);
  const step = width / BARS;
  bars.forEach((bar, i) => {
    const x = i * step + step / 2;
    const up = bar.close >= bar.open;
    const color = up ? "var(--up)" : "var(--down)";
    const candle = svgNode("g", { class: `candle ${up ? "up" : "down"}`, "data-start": bar.start });
    candle.append(svgNode("line", { x1: x, x2: x, y1: y(bar.high), y2: y(bar.low), stroke: color }));
    const top = y(Math.max(bar.open, bar.close));
    const body = Math.max(1, y(Math.min(bar.open, bar.close)) - top);
    candle.append(svgNode("rect", { x: x - step * 0.35, y: top, width: step * 0.7, height: body, fill: color }));
    svg.append(candle);
  });
  return svg;
}

export function installBook(cm) {
  const state = { selected: null, interval: "1s", open: {}, closed: [], loading: 0 };

  // Bid and ask columns on the price board, after the ones console.js fills by position.
  const head = document.querySelector("#prices thead tr");
  head.append(element("th", {}, "Bid"), element("th", {}, "Ask"));

  const card = element("section", { class: "card wide", id: "book" });
  card.innerHTML = `<h2>Book and candles <span id="book-symbol">–</span></h2>
    <div class="book-panels">
      <table id="ladder"><thead><tr><th>Side</th><th>Price</th><th>Size</th><th></th></tr></thead><tbody></tbody></table>
      <div class="chart"><label>Interval <select id="candle-interval">${INTERVALS.map((i) => `<option>${i}</option>`).join("")}</select></label>
      <div id="candle-chart"></div></div>
    </div>`;
  document.querySelector("#market").after(card);

  function renderBoard(symbols) {
    for (const [symbol, quote] of Object.entries(symbols)) {
      const row = document.querySelector(`#prices tr[data-symbol="${CSS.escape(symbol)}"]`);
      if (!row) continue;
      if (!row.querySelector("td.bid")) {
        row.append(element("td", { class: "bid" }), element("td", { class: "ask" }));
        row.addEventListener("click", () => select(symbol));
      }
      row.querySelector("td.bid").textContent = quote.bid === undefined ? "–" : `${fmt(quote.bid)} × ${fmt(quote.bidSize)}`;
      row.querySelector("td.ask").textContent = quote.ask === undefined ? "–" : `${fmt(quote.ask)} × ${fmt(quote.askSize)}`;
      row.classList.toggle("selected", symbol === state.selected);
    }
    if (!state.selected) {
      const first = Object.keys(symbols)[0];
      if (first) select(first);
    }
  }

  function renderLadder() {
    const kept = cm.books.books.get(state.selected);
    const book = kept && { bids: kept.bestBids(DEPTH), asks: kept.bestAsks(DEPTH) };
    const body = document.querySelector("#ladder tbody");
    body.replaceChildren();
    if (!book) return;
    const rows = ladderRows(book);
    const biggest = Math.max(1, ...rows.map((r) => r.size));
    for (const { side, price, size } of rows) {
      const row = body.insertRow();
      row.className = side;
      row.insertCell().textContent = side;
      row.insertCell().textContent = fmt(price);
      row.insertCell().textContent = fmt(size);
      const bar = element("span", { class: "depth-bar" });
      bar.style.width = `${Math.round((size / biggest) * 100)}%`;
      row.insertCell().append(bar);
    }
  }

  function renderChart() {
    const open = state.open[state.selected]?.[state.interval];
    const chart = document.querySelector("#candle-chart");
    const bars = withOpenBar(state.closed, open);
    chart.replaceChildren(candleChart(bars));
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
  document.querySelector("#candle-interval").addEventListener("change", (e) => {
    state.interval = e.target.value;
    loadClosed();
  });
  document.querySelector("#ticket-symbol").addEventListener("change", (e) => select(e.target.value));
}
