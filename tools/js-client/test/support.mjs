// For the ConnectionManager's tests: a clock with timers, WebSocket sockets the test drives, storage,
// and a manager connected through them.
import { ConnectionManager } from "../src/connection-manager.js";

/** A binary frame as a browser hands it over with binaryType "arraybuffer". */
function toArrayBuffer(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

export class Clock {
  constructor() {
    this.time = 1_000_000;
    this.timers = new Map();
    this.nextId = 1;
  }
  now = () => this.time;
  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.time + ms });
    return id;
  };
  clearTimeout = (id) => this.timers.delete(id);
  advance(ms) {
    const until = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = until;
  }
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.at - this.time);
  }
}

/**
 * WebSocket sockets the test drives. With a `codec`, a socket asked for its subprotocol agrees
 * (`protocol`) unless `agree` is false, and then speaks it both ways, as the server does.
 */
export function fakeSockets({ codec = null, agree = true } = {}) {
  const opened = [];
  class FakeWebSocket {
    constructor(url, protocols = []) {
      this.url = url;
      this.protocols = protocols;
      this.protocol = codec && agree && protocols.includes(codec.subprotocol) ? codec.subprotocol : "";
      this.readyState = 1;
      this.sent = [];
      this.frames = [];
      opened.push(this);
    }
    get packed() {
      return this.protocol !== "";
    }
    send(frame) {
      this.frames.push(frame);
      const message = this.packed ? codec.decode(frame) : JSON.parse(frame);
      this.sent.push(message);
      // A live server acks every beat; without it the manager gives a silent socket up.
      if (this.answersHeartbeats && message.type === "heartbeat") this.receive({ type: "heartbeat_ack", simulatorStatus: "stopped" });
    }
    close(code = 1000) {
      this.readyState = 3;
      this.onclose?.({ code, reason: "" });
    }
    receive(message) {
      this.onmessage?.({ data: this.packed ? toArrayBuffer(codec.encode(message)) : JSON.stringify(message) });
    }
    drop(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { FakeWebSocket, opened };
}

export const CONNECTED = {
  type: "connected",
  sessionId: "s-1",
  sessionToken: "session-token-1",
  userId: "1",
  deviceId: "dev-1",
  heartbeatInterval: 15_000,
  heartbeatTimeout: 45_000,
  timestamp: 0,
  sessionStatus: "active",
  createdAt: 0,
  expiresAt: 0,
  resumed: false,
  simulatorStatus: "stopped",
  simulatorId: null,
  maxMessageBytes: 65536,
  sessionSeq: 0,
  sessionEpoch: "e1",
};

export function memoryStorage() {
  const items = new Map();
  return { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)) };
}

/** A manager connected through a fake socket (`opened[0]`); `sockets` goes to fakeSockets. */
export async function connectedManager(options = {}, sockets = {}) {
  const clock = new Clock();
  const { FakeWebSocket, opened } = fakeSockets(sockets);
  const storage = memoryStorage();
  const logins = [];
  const fetch = async (url, init) => {
    logins.push({ url, body: JSON.parse(init.body) });
    return { ok: true, json: async () => ({ token: "tok-1", deviceId: "dev-1", expiresAt: 0 }) };
  };
  const cm = new ConnectionManager({
    baseUrl: "http://example.test",
    WebSocket: FakeWebSocket,
    fetch,
    storage,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    ...options,
  });
  const events = [];
  for (const type of ["state", "ended", "retry", "resumed", "quality"]) {
    cm.addEventListener(type, (e) => events.push({ type, detail: e.detail }));
  }
  const connecting = cm.connect({ username: "demo", password: "pw" });
  await Promise.resolve();
  await Promise.resolve();
  opened[0].receive(CONNECTED);
  await connecting;
  return { cm, clock, opened, events, logins, storage };
}
