// The console's own-market panel (docs/replay.md): start a simulator on a replay of a dataset or a
// synthetic walk, the clock bar (the bar's date and time, play and pause, speed, step, seek) and the
// replay's report (its figures, and the self-contained page the REST API serves).
import { ProtocolError } from "./client/connection-manager.js";

const SPEEDS = ["1", "10", "60", "100", "1000", "max"];

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function options(select, values, labels = values) {
  select.replaceChildren(...values.map((value, i) => element("option", { value }, labels[i])));
}

function errorText(error) {
  return error instanceof ProtocolError ? `${error.code}: ${error.serverMessage.message}` : error.message;
}

const when = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19));
const speedOf = (value) => (value === "max" ? "max" : Number(value));
const percent = (n) => (n == null ? "–" : `${(n * 100).toFixed(2)} %`);
const number = (n) => (n == null ? "–" : n.toFixed(2));

export function installReplay(cm) {
  const card = element("section", { class: "card", id: "market-card" });
  card.append(element("h2", {}, "Market"));
  const source = element("select", { id: "market-source", "aria-label": "Market" });
  options(source, ["shared", "replay", "synthetic"], ["Shared feed", "Replay a dataset", "Synthetic (own seed)"]);
  const dataset = element("select", { id: "market-dataset", "aria-label": "Dataset" });
  const from = element("input", { id: "market-from", type: "date", "aria-label": "From" });
  const to = element("input", { id: "market-to", type: "date", "aria-label": "To" });
  const seed = element("input", { id: "market-seed", type: "number", min: "0", step: "1", placeholder: "random", "aria-label": "Seed" });
  const start = element("button", { type: "button", id: "start-market" }, "Start on this market");
  const result = element("p", { id: "market-result", role: "status" });
  card.append(source, dataset, from, to, seed, start, result);

  const bar = element("section", { class: "card wide", id: "clock-bar", hidden: "" });
  const time = element("b", { id: "clock-time" }, "–");
  const index = element("span", { id: "clock-index" });
  const play = element("button", { type: "button", id: "clock-play" }, "Play");
  const speed = element("select", { id: "clock-speed", "aria-label": "Speed" });
  options(speed, SPEEDS, SPEEDS.map((s) => (s === "max" ? "max" : `${s}×`)));
  const step = element("button", { type: "button", id: "clock-step", class: "secondary" }, "Step 1");
  const step10 = element("button", { type: "button", id: "clock-step-10", class: "secondary" }, "Step 10");
  const seek = element("input", { id: "clock-seek", type: "datetime-local", "aria-label": "Seek to" });
  const go = element("button", { type: "button", id: "clock-seek-go", class: "secondary" }, "Seek");
  const report = element("button", { type: "button", id: "clock-report", class: "secondary" }, "Report");
  const note = element("span", { id: "clock-note" });
  const figures = element("dl", { id: "report-figures" });
  const frame = element("iframe", { id: "report-frame", title: "Replay report", hidden: "" });
  frame.style.cssText = "width:100%;height:640px;border:1px solid #ddd;";
  bar.append(element("h2", {}, "Clock"), time, index, play, speed, step, step10, seek, go, report, note, figures, frame);

  const anchor = document.querySelector("#session") ?? document.querySelector("main");
  anchor.after(card);
  card.after(bar);

  let simulatorId = null;
  let clock = null;
  let market = null;
  let stopped = false; // its report stays at hand once it stopped
  const datasets = new Map();

  function showSource() {
    dataset.hidden = from.hidden = to.hidden = source.value !== "replay";
    seed.hidden = source.value === "shared";
  }
  source.addEventListener("change", showSource);
  showSource();

  async function loadDatasets() {
    if (!cm.token) return;
    const response = await fetch("/api/market/datasets/", { headers: { Authorization: `Bearer ${cm.token}` } });
    if (!response.ok) return;
    const listed = await response.json();
    datasets.clear();
    for (const d of listed) datasets.set(d.datasetId, d);
    options(dataset, listed.map((d) => d.datasetId), listed.map((d) => `${d.name} (${d.symbols.map((s) => s.symbol).join(", ")})`));
  }

  function render() {
    const own = market && market.source !== "shared" && clock;
    bar.hidden = !own;
    if (!own) return;
    time.textContent = when(clock.time);
    const total = market.bars ? ` of ${market.bars}` : "";
    index.textContent = clock.bar == null ? "" : ` bar ${clock.bar + 1}${total}`;
    play.textContent = clock.paused ? "Play" : "Pause";
    play.dataset.paused = String(clock.paused);
    speed.value = String(clock.speed);
    play.disabled = speed.disabled = stopped;
    step.disabled = step10.disabled = stopped || !clock.paused;
    go.disabled = seek.disabled = stopped || market.source !== "replay";
    report.disabled = market.source !== "replay";
    if (stopped) note.textContent = " stopped";
    else note.textContent = clock.finished ? " the replay's last bar: seek to play again" : clock.lockstep ? " lock-step" : "";
    bar.dataset.finished = String(Boolean(clock.finished));
  }

  function adopt(message) {
    if (message.simulatorId && message.simulatorId !== simulatorId) {
      simulatorId = message.simulatorId;
      stopped = false;
    }
    if (message.market) market = message.market;
    if (message.clock) clock = { ...clock, ...message.clock };
    render();
  }

  async function request(type, fields) {
    try {
      const reply = await cm.request(type, fields);
      note.textContent = "";
      return reply;
    } catch (error) {
      note.textContent = ` ${errorText(error)}`;
      throw error;
    }
  }

  start.addEventListener("click", async () => {
    const choice = { source: source.value };
    if (source.value === "replay") {
      choice.datasetId = dataset.value;
      if (from.value) choice.start = Date.parse(`${from.value}T00:00:00Z`);
      if (to.value) choice.end = Date.parse(`${to.value}T23:59:59Z`);
    }
    if (source.value !== "shared" && seed.value !== "") choice.seed = Number(seed.value);
    const profile = document.querySelector("#start-profile");
    const fields = { market: choice, ...(profile ? { profile: profile.value } : {}) };
    try {
      const reply = await cm.request("start_simulator", fields);
      result.textContent = `Simulator ${reply.status} on ${reply.market?.source ?? "shared"}`;
      figures.replaceChildren();
      frame.hidden = true;
      clock = null;
      adopt(reply);
    } catch (error) {
      result.textContent = errorText(error);
    }
  });
  const settings = (reply) => adopt({ clock: { speed: reply.speed, paused: reply.paused, lockstep: reply.lockstep } });
  play.addEventListener("click", () => request("set_clock", { paused: !clock.paused }).then(settings, () => {}));
  speed.addEventListener("change", () => request("set_clock", { speed: speedOf(speed.value) }).then(settings, () => {}));
  step.addEventListener("click", () => request("step_clock", { bars: 1 }).catch(() => {}));
  step10.addEventListener("click", () => request("step_clock", { bars: 10 }).catch(() => {}));
  go.addEventListener("click", () => {
    if (seek.value) request("seek_clock", { time: Date.parse(`${seek.value}Z`) }).catch(() => {});
  });
  report.addEventListener("click", async () => {
    const path = `/api/market/simulators/${simulatorId}/report/`;
    const headers = { Authorization: `Bearer ${cm.token}` };
    const [json, page] = await Promise.all([fetch(path, { headers }), fetch(`${path}?format=html`, { headers })]);
    if (!json.ok) {
      note.textContent = ` report: ${(await json.json()).code}`;
      return;
    }
    const f = (await json.json()).figures;
    const rows = [
      ["Return", percent(f.totalReturn)], ["CAGR", percent(f.cagr)], ["Sharpe", number(f.sharpe)],
      ["Sortino", number(f.sortino)], ["Max drawdown", percent(f.maxDrawdown)], ["Trades", String(f.trades)],
      ["Win rate", percent(f.winRate)], [`vs ${f.benchmark}`, percent(f.benchmarkReturn)],
    ];
    figures.replaceChildren(...rows.flatMap(([name, value]) => [element("dt", {}, name), element("dd", { "data-figure": name }, value)]));
    frame.srcdoc = await page.text();
    frame.hidden = false;
  });

  cm.addEventListener("connected", () => loadDatasets().catch(() => {}));
  cm.addEventListener("clock_update", (e) => adopt(e.detail));
  cm.addEventListener("exchange_data_status", (e) => {
    if (e.detail.market) adopt(e.detail);
  });
  cm.addEventListener("exchange_data", (e) => {
    if (clock && market && market.source !== "shared") {
      clock = { ...clock, time: e.detail.timestamp, bar: e.detail.seq - 1 };
      render();
    }
  });
  cm.addEventListener("simulator_status_update", (e) => {
    if (["stopped", "error"].includes(e.detail.simulatorStatus) && e.detail.simulatorId === simulatorId) {
      stopped = true;
      render();
    }
  });
}
