// The console's performance tab: the equity curve, the account's figures and the journal downloads
// (GET /api/market/journal/…, docs/protocol.md §4c), and the account reset (`reset_account`).
// The figures are the server's own numbers (the same JSON the REST API answers), only formatted here.
import { errorText } from "./console-view.js";

const $ = (selector) => document.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 15_000;
const FIGURES = {
  realizedPnl: "money",
  unrealizedPnl: "money",
  fees: "money",
  netPnl: "money",
  maxDrawdown: "money",
  maxDrawdownRatio: "percent",
  roundTrips: "count",
  winRate: "percent",
  epoch: "count",
};

const format = {
  money: (n) => n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  percent: (n) => `${(n * 100).toLocaleString(undefined, { maximumFractionDigits: 2 })} %`,
  count: (n) => String(n),
};

function rangeQuery() {
  // The current epoch (since the last reset) is the API's default; "all" is the whole history.
  return $("#journal-range").value === "all" ? "from=0" : "";
}

export function drawCurve(svg, points) {
  svg.replaceChildren();
  // Drawn in the element's own pixels, so the labels are not stretched.
  const width = svg.clientWidth || 600;
  const height = svg.clientHeight || 160;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.dataset.points = String(points.length);
  if (points.length < 2) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", "8");
    text.setAttribute("y", "20");
    text.textContent = "no equity samples yet (they are taken while the simulator runs)";
    svg.append(text);
    return;
  }
  const values = points.map((p) => p.equity);
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const t0 = points[0].at;
  const tspan = points.at(-1).at - t0 || 1;
  const xy = points.map((p) => `${((p.at - t0) / tspan) * (width - 4) + 2},${height - 14 - ((p.equity - low) / span) * (height - 28)}`);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", xy.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", values.at(-1) >= values[0] ? "#0a7d32" : "#c0262d");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  for (const [y, value] of [[12, Math.max(...values)], [height - 2, low]]) {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", String(y));
    label.textContent = format.money(value);
    svg.append(label);
  }
}

export function mountJournal(cm, request) {
  let timer = null;
  let pending = null;
  let curve = [];
  // Drawn in the curve's own pixels: again whenever they change (its tab shown, the window resized).
  new ResizeObserver(() => drawCurve($("#equity-curve"), curve)).observe($("#equity-curve"));

  async function get(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${cm.token}` } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response;
  }

  async function refresh() {
    if (!cm.token) return;
    const query = rangeQuery();
    try {
      const [figures, points] = await Promise.all([
        get(`/api/market/journal/performance/?${query}`).then((r) => r.json()),
        get(`/api/market/journal/equity/?points=300&${query}`).then((r) => r.json()),
      ]);
      for (const [name, kind] of Object.entries(FIGURES)) {
        const dd = document.querySelector(`#figures dd[data-figure="${name}"]`);
        const value = figures[name];
        dd.dataset.value = value === undefined ? "" : String(value);
        dd.textContent = value === undefined ? "–" : format[kind](value);
        if (kind === "money" && name !== "fees" && name !== "maxDrawdown") dd.className = value >= 0 ? "up" : "down";
      }
      curve = points;
      drawCurve($("#equity-curve"), curve);
      $("#journal").dataset.loaded = String(Date.now());
    } catch (error) {
      $("#journal-result").textContent = error.message;
    }
  }

  function soon() {
    // Snapshots come with every fill: one refresh for a burst of them.
    if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 1_000);
  }

  async function download(kind) {
    const response = await get(`/api/market/journal/${kind}/?format=csv&${rangeQuery()}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = `${kind}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async function reset() {
    if (!window.confirm("Reset the paper account to its starting cash? Open orders are canceled; the history stays.")) return;
    try {
      const reply = await request("reset_account");
      $("#journal-result").textContent = `Account reset (epoch ${reply.reset.epoch}); equity before ${format.money(reply.reset.equityBefore)}`;
    } catch (error) {
      $("#journal-result").textContent = errorText(error);
    }
    refresh();
  }

  cm.addEventListener("connected", () => {
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  });
  cm.addEventListener("exchange_data_status", soon);
  cm.addEventListener("ended", () => clearInterval(timer));
  $("#journal-range").addEventListener("change", refresh);
  $("#journal-refresh").addEventListener("click", refresh);
  $("#reset-account").addEventListener("click", reset);
  for (const button of document.querySelectorAll("#journal [data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download).catch((e) => ($("#journal-result").textContent = e.message)));
  }
  return { refresh };
}
