// The console's simulator controls: its status, and one Start for every market (the shared feed, a
// replay of a dataset, a synthetic walk: docs/replay.md) with a realism profile; for a market of its
// own the clock bar (the bar's date and time, play and pause, speed, step, seek) and the replay's
// report (its figures, and the self-contained page the REST API serves) in a dialog.
import { element, errorText } from "./console-view.js";

const SPEEDS = ["1", "10", "60", "100", "1000", "max"];

function options(select, values, labels = values) {
  select.replaceChildren(...values.map((value, i) => element("option", { value }, labels[i])));
}

const when = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19));
const speedOf = (value) => (value === "max" ? "max" : Number(value));
const percent = (n) => (n == null ? "–" : `${(n * 100).toFixed(2)} %`);
const number = (n) => (n == null ? "–" : n.toFixed(2));

export function installSimulator(cm, send) {
  const $ = (id) => document.getElementById(id);
  const source = $("market-source");
  const profile = $("start-profile");
  const dataset = $("market-dataset");
  const from = $("market-from");
  const to = $("market-to");
  const seed = $("market-seed");
  const marketBar = $("market-bar");
  const choice = $("market-choice");
  const bar = $("clock-bar");
  const time = $("clock-time");
  const index = $("clock-index");
  const play = $("clock-play");
  const speed = $("clock-speed");
  const step = $("clock-step");
  const step10 = $("clock-step-10");
  const seek = $("clock-seek");
  const go = $("clock-seek-go");
  const report = $("clock-report");
  const note = $("clock-note");
  const status = $("sim-status");
  const runningProfile = $("sim-profile");
  const notice = $("notice");
  const dialog = $("report");
  const figures = $("report-figures");
  const frame = $("report-frame");
  options(speed, SPEEDS, SPEEDS.map((s) => (s === "max" ? "max" : `${s}×`)));

  let simulatorId = null;
  let clock = null;
  let market = null;
  let stopped = false; // its report stays at hand once it stopped
  const datasets = new Map();

  // The bar shows the choices of a market of its own before it starts, and its clock once it runs.
  function showBar() {
    dataset.hidden = from.hidden = to.hidden = source.value !== "replay";
    choice.hidden = source.value === "shared" || (!bar.hidden && !stopped);
    marketBar.hidden = choice.hidden && bar.hidden;
  }
  source.addEventListener("change", showBar);

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
    showBar();
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
      const reply = await send(type, fields);
      note.textContent = "";
      return reply;
    } catch (error) {
      note.textContent = ` ${errorText(error)}`;
      throw error;
    }
  }

  $("start-sim").addEventListener("click", async () => {
    const fields = {};
    if (profile.value !== "") fields.profile = profile.value; // else the account's
    if ($("start-account").value !== "") fields.accountId = Number($("start-account").value);
    if (source.value !== "shared") {
      fields.market = { source: source.value };
      if (source.value === "replay") {
        fields.market.datasetId = dataset.value;
        if (from.value) fields.market.start = Date.parse(`${from.value}T00:00:00Z`);
        if (to.value) fields.market.end = Date.parse(`${to.value}T23:59:59Z`);
      }
      if (seed.value !== "") fields.market.seed = Number(seed.value);
    }
    try {
      const reply = await send("start_simulator", fields);
      notice.textContent = `Simulator ${reply.status} on ${reply.market?.source ?? "the shared feed"} (${reply.profile ?? (profile.value || "the account's profile")})`;
      figures.replaceChildren();
      clock = null;
      adopt(reply);
    } catch (error) {
      notice.textContent = errorText(error);
    }
  });
  $("stop-sim").addEventListener("click", () =>
    send("stop_simulator").catch((error) => (notice.textContent = errorText(error))),
  );
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
    dialog.showModal();
  });
  $("report-close").addEventListener("click", () => dialog.close());

  cm.addEventListener("connected", (e) => {
    status.textContent = e.detail.simulatorStatus;
    loadDatasets().catch(() => {});
  });
  cm.addEventListener("clock_update", (e) => adopt(e.detail));
  cm.addEventListener("exchange_data_status", (e) => {
    runningProfile.textContent = e.detail.profile ?? "";
    if (e.detail.market) adopt(e.detail);
  });
  cm.addEventListener("exchange_data", (e) => {
    if (clock && market && market.source !== "shared") {
      clock = { ...clock, time: e.detail.timestamp, bar: e.detail.seq - 1 };
      render();
    }
  });
  cm.addEventListener("simulator_status_update", (e) => {
    status.textContent = e.detail.simulatorStatus;
    if (e.detail.simulatorStatus !== "running") runningProfile.textContent = "";
    if (["stopped", "error"].includes(e.detail.simulatorStatus) && e.detail.simulatorId === simulatorId) {
      stopped = true;
      render();
    }
  });
}
