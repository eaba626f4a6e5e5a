// Unit tests of the ConnectionManager (Node's built-in test runner: `npm test`).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  backoffDelay,
  ConnectionManager,
  ProtocolError,
  QualityMeter,
  RequestTimeout,
  StreamTracker,
} from "../src/connection-manager.js";
import { Clock, CONNECTED, connectedManager, fakeSockets, memoryStorage } from "./support.mjs";

// --- Backoff and quality -------------------------------------------------------------------

test("backoff delays stay within [0, min(cap, base * 2^attempt))", () => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const ceiling = Math.min(30_000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, { baseMs: 500, capMs: 30_000 }, () => 0), 0);
    const high = backoffDelay(attempt, { baseMs: 500, capMs: 30_000 }, () => 0.999999);
    assert.ok(high < ceiling && high >= ceiling * 0.99, `attempt ${attempt}: ${high} vs ${ceiling}`);
  }
});

test("full jitter spreads delays over the whole range", () => {
  const delays = Array.from({ length: 2000 }, () => backoffDelay(3, { baseMs: 500, capMs: 30_000 }));
  assert.ok(Math.min(...delays) < 400 && Math.max(...delays) > 3600);
});

test("quality is judged from the worst of the last four round trips", () => {
  const meter = new QualityMeter(1000);
  assert.equal(meter.observe(100), "good");
  assert.equal(meter.observe(600), "degraded");
  assert.equal(meter.missed(), "poor");
  for (let i = 0; i < 3; i++) assert.equal(meter.observe(50), "poor");
  assert.equal(meter.observe(50), "good");
});

// --- connect() and requests ------------------------------------------------------------------

test("connect logs in, keeps the device ID, opens the socket with token and device, and beats", async () => {
  const { cm, opened, logins, storage } = await connectedManager();
  assert.equal(logins[0].url, "http://example.test/api/auth/token/");
  assert.equal(storage.getItem("trading.deviceId"), "dev-1");
  assert.equal(opened[0].url, "ws://example.test/ws/session/?token=tok-1&deviceId=dev-1");
  assert.equal(cm.state, "open");
  assert.equal(opened[0].sent[0].type, "heartbeat");
  assert.equal(opened[0].sent[0].deviceId, "dev-1");
});

test("a second login sends the stored device ID", async () => {
  const { cm, storage } = await connectedManager();
  cm.close();
  const calls = [];
  const again = new ConnectionManager({
    storage,
    fetch: async (url, init) => {
      calls.push(JSON.parse(init.body));
      return { ok: false, json: async () => ({ type: "error", code: "invalid_credentials", message: "no" }) };
    },
    WebSocket: class {},
  });
  await assert.rejects(again.connect({ username: "demo", password: "wrong" }), ProtocolError);
  assert.equal(calls[0].deviceId, "dev-1");
  again.close();
});

test("a request resolves with the reply that carries its requestId, and only that one", async () => {
  const { cm, opened } = await connectedManager();
  const reply = cm.request("request_session_info");
  const sent = opened[0].sent.at(-1);
  assert.equal(sent.type, "request_session_info");
  assert.ok(sent.requestId && sent.deviceId === "dev-1" && typeof sent.timestamp === "number");
  opened[0].receive({ type: "session_info", requestId: "someone-else" });
  opened[0].receive({ type: "session_info", requestId: sent.requestId, status: "active" });
  assert.equal((await reply).status, "active");
});

test("a request is rejected by an error reply with its code, and by a timeout", async () => {
  const { cm, opened, clock } = await connectedManager();
  const refused = cm.request("stop_simulator");
  const { requestId } = opened[0].sent.at(-1);
  opened[0].receive({ type: "error", requestId, code: "simulator_not_running", message: "none" });
  await assert.rejects(refused, (error) => error instanceof ProtocolError && error.code === "simulator_not_running");

  const silent = cm.request("request_session_info", {}, { timeout: 2000 });
  clock.advance(1999);
  let settled = false;
  silent.catch(() => {}).finally(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false);
  clock.advance(1);
  await assert.rejects(silent, RequestTimeout);
});

// --- Reconnection rules ------------------------------------------------------------------------

test("after a drop it reconnects with backoff and then sends reconnect with the session token", async () => {
  const { cm, opened, clock, events } = await connectedManager();
  opened[0].drop(1006);
  assert.equal(cm.state, "reconnecting");
  const retry = events.find((e) => e.type === "retry");
  assert.ok(retry.detail.delayMs >= 0 && retry.detail.delayMs < 500);
  assert.equal(opened.length, 1);
  clock.advance(retry.detail.delayMs);
  assert.equal(opened.length, 2);
  opened[1].receive({ ...CONNECTED, resumed: true });
  const reconnect = opened[1].sent.find((m) => m.type === "reconnect");
  assert.equal(reconnect.sessionToken, "session-token-1");
  assert.equal(cm.state, "open");
});

test("it honours the shutdown hint before reconnecting", async () => {
  const { opened, clock } = await connectedManager();
  opened[0].receive({ type: "shutdown", timestamp: 0, reason: "deploy", reconnectAfterMs: 3210 });
  opened[0].drop(4012);
  assert.deepEqual(clock.pendingDelays(), [3210]);
  clock.advance(3209);
  assert.equal(opened.length, 1);
  clock.advance(1);
  assert.equal(opened.length, 2);
});

test("a busy server's retry slot replaces the backoff before the next handshake", async () => {
  const { opened, clock } = await connectedManager();
  opened[0].drop(1006);
  clock.advance(120_000); // the backoff's retry
  assert.equal(opened.length, 2);
  opened[1].receive({ type: "error", requestId: null, code: "server_busy", message: "busy", timestamp: 0, retryAfterMs: 1234 });
  opened[1].drop(4013);
  assert.deepEqual(clock.pendingDelays(), [1234]);
  clock.advance(1233);
  assert.equal(opened.length, 2);
  clock.advance(1);
  assert.equal(opened.length, 3);
});

for (const [code, reason] of [
  [4009, "connection_replaced"],
  [4003, "device_rejected"],
  [4001, "auth_failed"],
  [4010, "session_stopped"],
]) {
  test(`close ${code} ends the connection (${reason}) instead of reconnecting`, async () => {
    const { cm, opened, clock, events } = await connectedManager();
    opened[0].drop(code);
    clock.advance(120_000);
    assert.equal(opened.length, 1);
    assert.equal(cm.state, "closed");
    assert.equal(events.find((e) => e.type === "ended").detail.reason, reason);
  });
}

for (const code of [4008, 4011, 4013, 4014, 1011]) {
  test(`close ${code} is followed by a reconnection`, async () => {
    const { opened, clock } = await connectedManager();
    opened[0].drop(code);
    clock.advance(60_000);
    assert.equal(opened.length, 2);
  });
}

test("coming back online retries at once, and there are never two sockets", async () => {
  const { cm, opened } = await connectedManager({ backoffBaseMs: 60_000, backoffCapMs: 60_000, random: () => 0.9 });
  opened[0].drop(1006);
  assert.equal(opened.length, 1);
  cm.onOnline();
  assert.equal(opened.length, 2);
  cm.onOnline();
  assert.equal(opened.length, 2);
});

test("it gives up after maxAttempts and says so", async () => {
  const { cm, opened, clock, events } = await connectedManager({ maxAttempts: 2 });
  opened[0].drop(1006);
  clock.advance(60_000);
  opened[1].drop(1006);
  clock.advance(60_000);
  opened[2].drop(1006);
  clock.advance(60_000);
  assert.equal(opened.length, 3);
  assert.equal(cm.state, "closed");
  assert.equal(events.find((e) => e.type === "ended").detail.reason, "gave_up");
});

test("heartbeats go out every interval, carry the measured round trip, and a missed ack turns quality poor", async () => {
  const { opened, clock, events } = await connectedManager();
  clock.advance(40);
  opened[0].receive({ type: "heartbeat_ack", simulatorStatus: "running" });
  clock.advance(15_000 - 40);
  const second = opened[0].sent.filter((m) => m.type === "heartbeat")[1];
  assert.equal(second.rttMs, 40);
  assert.equal(second.simulatorStatus, "running");
  clock.advance(15_000); // no ack for the second beat
  const qualities = events.filter((e) => e.type === "quality").map((e) => e.detail.quality);
  assert.deepEqual(qualities, ["good", "poor"]);
});

test("a socket silent for longer than the heartbeat timeout is given up and replaced, once", async () => {
  const { cm, opened, clock, events } = await connectedManager();
  clock.advance(40);
  opened[0].receive({ type: "heartbeat_ack", simulatorStatus: "stopped" });
  // The cable is pulled: no ack, no close. Until timeout + interval the socket is kept.
  clock.advance(45_000 + 15_000 - 40);
  assert.equal(cm.state, "open");
  assert.equal(opened[0].readyState, 1);
  clock.advance(15_000); // the next beat finds it silent
  assert.equal(opened[0].readyState, 3);
  assert.equal(cm.state, "reconnecting");
  assert.equal(events.filter((e) => e.type === "retry").length, 1);
  opened[0].drop(1006); // a late close event of the abandoned socket changes nothing
  assert.equal(events.filter((e) => e.type === "retry").length, 1);
  clock.advance(events.find((e) => e.type === "retry").detail.delayMs);
  assert.equal(opened.length, 2);
  opened[1].receive({ ...CONNECTED, resumed: true });
  assert.equal(opened[1].sent.find((m) => m.type === "reconnect").sessionToken, "session-token-1");
  assert.equal(cm.state, "open");
});

test("a socket that keeps talking is never given up, however long", async () => {
  const { cm, opened, clock } = await connectedManager();
  for (let i = 0; i < 20; i += 1) {
    clock.advance(15_000);
    opened[0].receive({ type: "heartbeat_ack", simulatorStatus: "stopped" });
  }
  assert.equal(cm.state, "open");
  assert.equal(opened.length, 1);
});

// --- The session stream: exactly once, in order, across reconnects -------------------------

const push = (seq, epoch = "e1", extra = {}) => ({
  type: "simulator_status_update",
  simulatorId: "sim-1",
  simulatorStatus: "running",
  timestamp: 0,
  sessionId: "s-1",
  sessionSeq: seq,
  sessionEpoch: epoch,
  ...extra,
});

test("the tracker applies pushes in order, holds one after a hole, and drops a duplicate", () => {
  const tracker = new StreamTracker();
  tracker.reset("e1", 0);
  assert.deepEqual(tracker.accept(push(1)).map((m) => m.sessionSeq), [1]);
  assert.deepEqual(tracker.accept(push(3)), []);
  assert.equal(tracker.hasGap, true);
  assert.deepEqual(tracker.accept(push(2)).map((m) => m.sessionSeq), [2, 3]);
  assert.equal(tracker.hasGap, false);
  assert.deepEqual(tracker.accept(push(2)), []);
  assert.deepEqual(tracker.accept(push(3)), []);
  assert.equal(tracker.hasGap, false); // dropped, not held
  assert.equal(tracker.last, 3);
});

test("a reset drops what the new position covers and releases what follows it", () => {
  const tracker = new StreamTracker();
  tracker.reset("e1", 4);
  tracker.accept(push(1, "e2"));
  tracker.accept(push(7, "e2"));
  tracker.accept(push(8, "e2"));
  assert.deepEqual(tracker.reset("e2", 6).map((m) => m.sessionSeq), [7, 8]);
  assert.equal(tracker.epoch, "e2");
  assert.equal(tracker.last, 8);
  assert.equal(tracker.hasGap, false);
});

test("after a drop, reconnect carries the last applied position and replayed pushes come out once, in order", async () => {
  const { cm, opened, clock, events } = await connectedManager();
  const seen = [];
  cm.addEventListener("simulator_status_update", (e) => seen.push(e.detail.sessionSeq));
  opened[0].receive(push(1));
  opened[0].receive(push(2));
  opened[0].drop(1006);
  clock.advance(events.find((e) => e.type === "retry").detail.delayMs);
  // The new connection opened at 4 and got push 5 live before the reply to `reconnect`.
  opened[1].receive({ ...CONNECTED, resumed: true, sessionSeq: 4 });
  const reconnect = opened[1].sent.find((m) => m.type === "reconnect");
  assert.equal(reconnect.lastSessionSeq, 2);
  assert.equal(reconnect.sessionEpoch, "e1");
  opened[1].receive(push(5));
  assert.deepEqual(seen, [1, 2]);
  opened[1].receive(push(3));
  opened[1].receive(push(4));
  opened[1].receive(push(2)); // a duplicate is never applied twice
  opened[1].receive({
    type: "reconnect_result",
    requestId: reconnect.requestId,
    success: true,
    deviceId: "dev-1",
    deviceIdValid: true,
    sessionStatus: "active",
    simulatorStatus: "running",
    recovered: true,
    replayed: 2,
    sessionSeq: 5,
    sessionEpoch: "e1",
  });
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
});

test("a hole the server does not fill in time makes the client ask for a resync from its last position", async () => {
  const { cm, opened, clock } = await connectedManager({ gapTimeoutMs: 3000 });
  const seen = [];
  cm.addEventListener("simulator_status_update", (e) => seen.push(e.detail.sessionSeq));
  opened[0].receive(push(1));
  opened[0].receive(push(3));
  clock.advance(2999);
  assert.equal(opened[0].sent.filter((m) => m.type === "request_resync").length, 0);
  clock.advance(1);
  const resync = opened[0].sent.find((m) => m.type === "request_resync");
  assert.equal(resync.lastSessionSeq, 1);
  assert.equal(resync.sessionEpoch, "e1");
  // The server could not replay: it resets the stream to 5 (a snapshot follows).
  opened[0].receive({
    type: "session_resync",
    requestId: resync.requestId,
    reason: "requested",
    recovered: false,
    replayed: 0,
    sessionSeq: 5,
    sessionEpoch: "e1",
    sessionStatus: "active",
    simulatorStatus: "running",
    simulatorId: "sim-1",
    timestamp: 0,
  });
  opened[0].receive(push(6));
  assert.deepEqual(seen, [1, 6]);
});

// --- Tickets: the token stays out of URLs --------------------------------------------------

async function ticketManager(ticketReply) {
  const { FakeWebSocket, opened } = fakeSockets();
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    if (url.endsWith("/api/auth/token/")) {
      return { ok: true, json: async () => ({ token: "tok-1", deviceId: "dev-1", expiresAt: 0 }) };
    }
    return ticketReply(calls.length);
  };
  const clock = new Clock();
  const cm = new ConnectionManager({
    baseUrl: "http://example.test",
    WebSocket: FakeWebSocket,
    fetch,
    storage: memoryStorage(),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    useTickets: true,
  });
  const ended = [];
  cm.addEventListener("ended", (e) => ended.push(e.detail));
  return { cm, opened, calls, clock, ended };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

test("with tickets, each socket opens with a fresh single-use ticket and never the token", async () => {
  const { cm, opened, calls, clock } = await ticketManager((n) => ({
    ok: true,
    status: 201,
    json: async () => ({ ticket: `tk-${n}`, deviceId: "dev-1", expiresAt: 0 }),
  }));
  const connecting = cm.connect({ username: "demo", password: "pw" });
  await flush();
  assert.equal(opened[0].url, "ws://example.test/ws/session/?ticket=tk-2&deviceId=dev-1");
  assert.equal(calls[1].init.headers.Authorization, "Bearer tok-1");
  opened[0].receive(CONNECTED);
  await connecting;
  opened[0].drop(1006);
  clock.advance(1000);
  await flush();
  assert.equal(opened[1].url, "ws://example.test/ws/session/?ticket=tk-3&deviceId=dev-1");
  assert.ok(opened.every((socket) => !socket.url.includes("tok-1")));
  cm.close();
});

test("with tickets, a refused token ends the connection instead of retrying", async () => {
  const { cm, opened, ended } = await ticketManager(() => ({
    ok: false,
    status: 401,
    json: async () => ({ type: "error", code: "token_revoked", message: "The token was revoked." }),
  }));
  await assert.rejects(cm.connect({ username: "demo", password: "pw" }), ProtocolError);
  assert.equal(opened.length, 0);
  assert.deepEqual(ended.map((e) => e.reason), ["auth_failed"]);
  assert.equal(cm.state, "closed");
});

// --- Token renewal ------------------------------------------------------------------------------

async function managerWithTokenExpiring(inMs) {
  const clock = new Clock();
  const { FakeWebSocket, opened } = fakeSockets();
  const cm = new ConnectionManager({
    baseUrl: "http://example.test",
    WebSocket: FakeWebSocket,
    fetch: async () => ({ ok: true, json: async () => ({}) }),
    storage: memoryStorage(),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
  });
  const renewed = [];
  cm.addEventListener("token", (e) => renewed.push(e.detail));
  const connecting = cm.connect({ token: "tok-1" });
  await Promise.resolve();
  opened[0].answersHeartbeats = true; // minutes pass in these tests
  opened[0].receive({ ...CONNECTED, tokenExpiresAt: clock.time + inMs });
  await connecting;
  return { cm, clock, ws: opened[0], renewed };
}

test("the access token is renewed in-band a minute before it expires, and again with the new one", async () => {
  const { cm, clock, ws, renewed } = await managerWithTokenExpiring(10 * 60_000);

  clock.advance(9 * 60_000 - 1);
  assert.equal(ws.sent.filter((m) => m.type === "refresh_token").length, 0);
  clock.advance(1);
  const refresh = ws.sent.find((m) => m.type === "refresh_token");
  assert.ok(refresh, "refresh_token sent 60 s before expiry");
  ws.receive({ type: "token_refreshed", requestId: refresh.requestId, token: "tok-2", expiresAt: clock.time + 10 * 60_000, timestamp: 0 });
  await Promise.resolve();
  await Promise.resolve();

  assert.equal(cm.token, "tok-2");
  assert.deepEqual(renewed, [{ token: "tok-2", expiresAt: clock.time + 10 * 60_000 }]);
  clock.advance(9 * 60_000);
  assert.equal(ws.sent.filter((m) => m.type === "refresh_token").length, 2);
  cm.close();
});

test("a short-lived token is renewed half-way to its expiry", async () => {
  const { cm, clock, ws } = await managerWithTokenExpiring(20_000);

  clock.advance(9_999);
  assert.equal(ws.sent.some((m) => m.type === "refresh_token"), false);
  clock.advance(1);
  assert.equal(ws.sent.some((m) => m.type === "refresh_token"), true);
  cm.close();
});

test("without a token expiry nothing is renewed, and a closed manager leaves no renewal timer", async () => {
  const { cm, clock } = await connectedManager();
  assert.equal(cm.tokenTimer, null);

  const expiring = await managerWithTokenExpiring(120_000);
  assert.notEqual(expiring.cm.tokenTimer, null);
  expiring.cm.close();
  assert.equal(expiring.cm.tokenTimer, null);
  assert.ok(clock);
  cm.close();
});

// --- Resuming on a busy server -------------------------------------------------------------

async function droppedAndBack() {
  const manager = await connectedManager();
  manager.opened[0].receive(push(1));
  manager.opened[0].drop(1006);
  manager.clock.advance(manager.events.find((e) => e.type === "retry").detail.delayMs);
  manager.opened[1].receive({ ...CONNECTED, resumed: true, sessionSeq: 3 });
  return manager;
}

const sentOf = (socket, type) => socket.sent.filter((m) => m.type === type);

test("a reconnect refused as unavailable is sent again after the error's retry hint, then resumes", async () => {
  const { opened, clock, events } = await droppedAndBack();
  const first = sentOf(opened[1], "reconnect")[0];
  opened[1].receive({ type: "error", requestId: first.requestId, code: "service_unavailable", message: "busy", timestamp: 0, retryAfterMs: 700 });
  await flush();
  clock.advance(699);
  assert.equal(sentOf(opened[1], "reconnect").length, 1);
  clock.advance(1);
  const again = sentOf(opened[1], "reconnect");
  assert.equal(again.length, 2);
  assert.equal(again[1].lastSessionSeq, 1);
  opened[1].receive({
    type: "reconnect_result", requestId: again[1].requestId, success: true, deviceId: "dev-1", deviceIdValid: true,
    sessionStatus: "active", simulatorStatus: "running", recovered: true, replayed: 2, sessionSeq: 3, sessionEpoch: "e1",
  });
  await flush();
  assert.equal(events.filter((e) => e.type === "resumed").length, 1);
  assert.equal(opened.length, 2); // the socket stayed; only the request was repeated
});

test("a reconnect that keeps failing falls back to a resync from the last applied position", async () => {
  const { opened, clock } = await droppedAndBack();
  for (let attempt = 0; attempt < 5; attempt++) {
    const pending = sentOf(opened[1], "reconnect").at(-1);
    opened[1].receive({ type: "error", requestId: pending.requestId, code: "service_unavailable", message: "busy", timestamp: 0 });
    await flush();
    clock.advance(60_000);
  }
  assert.equal(sentOf(opened[1], "reconnect").length, 5);
  const resync = sentOf(opened[1], "request_resync");
  assert.equal(resync.length, 1);
  assert.equal(resync[0].lastSessionSeq, 1);
  assert.equal(resync[0].sessionEpoch, "e1");
});

test("a reconnect refused for good is not repeated, and a resync stands in", async () => {
  const { opened, clock } = await droppedAndBack();
  const first = sentOf(opened[1], "reconnect")[0];
  opened[1].receive({ type: "error", requestId: first.requestId, code: "session_not_active", message: "no", timestamp: 0 });
  await flush();
  clock.advance(60_000);
  assert.equal(sentOf(opened[1], "reconnect").length, 1);
  assert.equal(sentOf(opened[1], "request_resync").length, 1);
});

test("a retry pending for a socket that dropped is not sent on the next one", async () => {
  const { opened, clock } = await droppedAndBack();
  const first = sentOf(opened[1], "reconnect")[0];
  opened[1].receive({ type: "error", requestId: first.requestId, code: "server_busy", message: "busy", timestamp: 0, retryAfterMs: 5000 });
  await flush();
  opened[1].drop(1006);
  clock.advance(4000); // the next socket opens before the old retry is due
  opened.at(-1).receive({ ...CONNECTED, resumed: true, sessionSeq: 3 });
  clock.advance(2000);
  assert.equal(sentOf(opened[1], "reconnect").length, 1);
  assert.equal(sentOf(opened.at(-1), "reconnect").length, 1);
});

// --- Flow control of the market stream -------------------------------------------------------

test("a market subscription asks for flow control and ticks are acknowledged at half the window", async () => {
  const { cm, opened } = await connectedManager();
  const socket = opened[0];
  const subscribed = cm.request("subscribe_market", { symbols: null });
  const asked = socket.sent.at(-1);
  socket.receive({ type: "market_subscription", requestId: asked.requestId, success: true, symbols: ["AAPL"], window: 4 });
  await subscribed;
  const applied = [];
  cm.addEventListener("exchange_data", (e) => applied.push(e.detail.seq));
  for (const seq of [11, 12, 13, 14, 15]) socket.receive({ type: "exchange_data", timestamp: 0, symbols: {}, seq });

  assert.equal(asked.flowControl, true);
  assert.deepEqual(applied, [11, 12, 13, 14, 15]);
  assert.deepEqual(
    socket.sent.filter((m) => m.type === "market_ack"),
    [
      { type: "market_ack", deviceId: "dev-1", seq: 12 },
      { type: "market_ack", deviceId: "dev-1", seq: 14 },
    ],
  );
});

test("without a window from the server, or with flow control turned off, no tick is acknowledged", async () => {
  const { cm, opened } = await connectedManager({ flowControl: false });
  const socket = opened[0];
  const subscribed = cm.request("subscribe_market", { symbols: null });
  const asked = socket.sent.at(-1);
  socket.receive({ type: "market_subscription", requestId: asked.requestId, success: true, symbols: ["AAPL"] });
  await subscribed;
  for (const seq of [1, 2, 3, 4]) socket.receive({ type: "exchange_data", timestamp: 0, symbols: {}, seq });

  assert.equal(asked.flowControl, undefined);
  assert.deepEqual(socket.sent.filter((m) => m.type === "market_ack"), []);
});

test("it keeps the books of exchange_data, emits orderbook, and asks again for a book out of step", async () => {
  const { cm, opened } = await connectedManager({ flowControl: false });
  const socket = opened[0];
  const subscribed = cm.request("subscribe_market", { symbols: ["AAPL"], depth: 2, bookDeltas: true });
  socket.receive({ type: "market_subscription", requestId: socket.sent.at(-1).requestId, success: true, symbols: ["AAPL"] });
  await subscribed;
  const changed = [];
  cm.addEventListener("orderbook", (e) => changed.push([e.detail.symbol, e.detail.book.bestBids(1)[0]]));
  const snapshot = { action: "snapshot", seq: 1, prevSeq: null, bids: [[100, 10]], asks: [[100.5, 3]], checksum: 3498124035 };
  socket.receive({ type: "exchange_data", timestamp: 0, symbols: {}, seq: 1, books: { AAPL: snapshot } });
  const gap = { action: "update", seq: 3, prevSeq: 2, bids: [[100, 11]], asks: [], checksum: 0 };
  socket.receive({ type: "exchange_data", timestamp: 0, symbols: {}, seq: 3, books: { AAPL: gap } });

  assert.deepEqual(changed, [["AAPL", [100, 10]]]);
  assert.equal(cm.books.books.has("AAPL"), false);
  const asked = socket.sent.at(-1);
  assert.equal(asked.type, "request_book");
  assert.deepEqual(asked.symbols, ["AAPL"]);
  socket.receive({ type: "book", requestId: asked.requestId, seq: 3, timestamp: 0, books: { AAPL: { ...snapshot, seq: 3 } } });
  assert.equal(cm.books.books.get("AAPL").seq, 3);
});
