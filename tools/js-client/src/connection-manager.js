// ConnectionManager: the browser client of the session protocol (docs/protocol.md).
// A plain ES module, no build step: the service serves this folder to its console, and `npm pack`
// makes it the package @tradesim/client (README.md). Types: ./connection-manager.d.ts and
// ./protocol.d.ts (generated from the server's schema).
// (The import below names no real path: collectstatic rewrites real ones to hashed names, and this
// file importing itself would change its own hash on every pass.)
//
//   import { ConnectionManager } from "…/connection-manager.js";
//   const cm = new ConnectionManager({ baseUrl: "" });
//   cm.addEventListener("exchange_data", (e) => render(e.detail.symbols));
//   cm.addEventListener("state", (e) => console.log(e.detail.state));
//   await cm.connect({ username: "demo", password: "demo-password" });
//   const started = await cm.request("start_simulator");
//   const placed = await cm.request("place_order", { symbol: "AAPL", side: "buy", orderType: "market", quantity: 1 });
//   cm.close();

import { BookKeeper } from "./order-books.js";

/** Defaults; every one can be overridden in the constructor's options. */
export const DEFAULTS = Object.freeze({
  baseUrl: "", // "" = this page's origin
  backoffBaseMs: 500, // first retry waits up to this long
  backoffCapMs: 30_000, // no retry waits longer than this
  maxAttempts: Infinity, // reconnect attempts before giving up (state "closed")
  requestTimeoutMs: 10_000, // a request without a reply within this fails
  gapTimeoutMs: 3_000, // a hole in the session stream not filled within this asks for a resync
  useTickets: false, // open sockets with a single-use ticket (POST /api/auth/ticket/), keeping the token out of URLs
  tokenRenewBeforeMs: 60_000, // renew the access token in-band (`refresh_token`) this long before it expires
  flowControl: true, // `subscribe_market` asks for flow control and the manager acknowledges ticks (`market_ack`)
  deviceIdKey: "trading.deviceId", // where the device ID is kept in storage
});

/** Close codes after which the client reconnects (docs/protocol/codes.md); others end the connection. */
export const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4008, 4011, 4012, 4013, 4014, 4029, 4030]);

/** Why the connection ended for good, by close code (surfaced as the "ended" event). */
export const FINAL_CODES = Object.freeze({
  4001: "auth_failed", // the token is unknown, revoked or expired: log in again
  4003: "device_rejected", // the device was invalidated: do not reconnect with it
  4009: "connection_replaced", // a newer connection of this device took over
  4010: "session_stopped", // the session was stopped
  4015: "unsupported_subprotocol", // it offered no subprotocol the server speaks
});

/** Error codes after which a request may succeed if sent again later (docs/protocol/codes.md). */
export const RETRYABLE_ERRORS = new Set(["service_unavailable", "server_busy"]);
const RESUME_ATTEMPTS = 5; // `reconnect` requests per socket before falling back to a resync

/** Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, { baseMs = DEFAULTS.backoffBaseMs, capMs = DEFAULTS.backoffCapMs } = {}, random = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * Connection quality from measured heartbeat round trips, judged like the server does with
 * lateness: the worst of the last four decides. Up to a quarter of the heartbeat interval is
 * "good", up to one interval "degraded", beyond (or a missed ack) "poor".
 */
export class QualityMeter {
  constructor(intervalMs, window = 4) {
    this.intervalMs = intervalMs;
    this.window = window;
    this.samples = [];
  }

  observe(rttMs) {
    this.samples.push(rttMs);
    if (this.samples.length > this.window) this.samples.shift();
    return this.quality;
  }

  missed() {
    return this.observe(Infinity);
  }

  get quality() {
    if (this.samples.length === 0) return "good";
    const worst = Math.max(...this.samples);
    if (worst <= this.intervalMs / 4) return "good";
    if (worst <= this.intervalMs) return "degraded";
    return "poor";
  }
}

/** The standard `error` message, as a rejection. */
export class ProtocolError extends Error {
  constructor(message) {
    super(`${message.code}: ${message.message}`);
    this.name = "ProtocolError";
    this.code = message.code;
    this.details = message.details ?? [];
    this.serverMessage = message;
  }
}

export class RequestTimeout extends Error {
  constructor(type, requestId, timeoutMs) {
    super(`no reply to ${type} (${requestId}) within ${timeoutMs} ms`);
    this.name = "RequestTimeout";
  }
}

/**
 * The session stream as this client applied it (docs/guarantees.md): pushes carrying
 * `sessionSeq`/`sessionEpoch` are applied exactly once and in order. A push ahead of a hole is
 * held until the hole fills (the server replays it) or the stream is reset by `reconnect_result`
 * or `session_resync`; a push already applied is dropped.
 */
export class StreamTracker {
  constructor() {
    this.epoch = null;
    this.last = 0;
    this.held = new Map(); // `${epoch}:${seq}` -> message
  }

  /** Adopt a position (the server's word: everything up to `seq` is reflected in the state). Returns held messages now due. */
  reset(epoch, seq) {
    this.epoch = epoch;
    this.last = seq;
    for (const [key, message] of this.held) {
      if (message.sessionEpoch !== epoch || message.sessionSeq <= seq) this.held.delete(key);
    }
    return this.#drain();
  }

  /** The messages to apply now, in order: none (held or duplicate), this one, or this one and those it unblocked. */
  accept(message) {
    if (message.sessionSeq === undefined) return [message];
    if (this.epoch === null) {
      this.epoch = message.sessionEpoch;
      this.last = message.sessionSeq;
      return [message];
    }
    if (message.sessionEpoch === this.epoch && message.sessionSeq <= this.last) return [];
    if (message.sessionEpoch === this.epoch && message.sessionSeq === this.last + 1) {
      this.last = message.sessionSeq;
      return [message, ...this.#drain()];
    }
    this.held.set(`${message.sessionEpoch}:${message.sessionSeq}`, message);
    return [];
  }

  get hasGap() {
    return this.held.size > 0;
  }

  #drain() {
    const due = [];
    for (;;) {
      const next = this.held.get(`${this.epoch}:${this.last + 1}`);
      if (!next) return due;
      this.held.delete(`${this.epoch}:${this.last + 1}`);
      this.last += 1;
      due.push(next);
    }
  }
}

/** The HTTP status an error code of the ticket endpoint comes with (docs/protocol/codes.md). */
function statusOf(code) {
  if (["token_missing", "token_invalid", "token_revoked", "token_expired", "authentication_required"].includes(code)) return 401;
  if (code === "device_invalidated") return 403;
  return 0;
}

let requestCounter = 0;
function newRequestId() {
  requestCounter += 1;
  const random = Math.random().toString(36).slice(2, 8);
  return `r${Date.now().toString(36)}-${requestCounter}-${random}`;
}

/**
 * One session connection with automatic reconnection.
 *
 * Events (CustomEvent, payload in `detail`): "state" {state, previous}, "connected" (the
 * `connected` message), "quality" {quality, rttMs}, "ended" {reason, code, message},
 * "token" {token, expiresAt} (the access token was renewed in-band),
 * "message" (every server message), one event per server message type
 * ("exchange_data", "simulator_status_update", …), and "orderbook" {symbol, book} when a book kept
 * from `exchange_data.books` changed (`books`, a BookKeeper: see ./order-books.js). Pushes of the session stream are emitted
 * exactly once and in `sessionSeq` order, across reconnects (StreamTracker).
 */
export class ConnectionManager extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this.fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.storage = options.storage ?? globalThis.localStorage ?? null;
    this.random = options.random ?? Math.random;
    this.setTimer = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this.clearTimer = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    this.now = options.now ?? (() => Date.now());
    // null: JSON text frames, the protocol's default; a codec ({subprotocol, encode, decode}, as
    // the package's `msgpackCodec`) asks the server for its encoding at the handshake.
    this.codec = options.codec ?? null;
    this.state = "idle";
    this.books = new BookKeeper(); // after a subscribe_market with depth and bookDeltas
    this.socket = null;
    this.token = null;
    this.tokenExpiresAt = null; // from login, `connected` or `token_refreshed`
    this.tokenTimer = null;
    this.deviceId = this.storage?.getItem(this.options.deviceIdKey) ?? null;
    this.session = null; // the last `connected` message
    this.sessionToken = null;
    this.quality = null;
    this.lastRttMs = null;
    this.attempt = 0;
    this.pending = new Map(); // requestId -> {resolve, reject, timer, type}
    this.heartbeatTimer = null;
    this.reconnectTimer = null;
    this.beatSentAt = null;
    this.lastHeardAt = null; // when the open socket last brought a message
    this.retryAfterMs = null; // from a `shutdown` message, or an `error`'s retryAfterMs
    this.stream = new StreamTracker();
    this.gapTimer = null;
    this.marketWindow = 0; // ticks the server sends past the last `market_ack` (0: no flow control)
    this.ticksUnacknowledged = 0;
    this.opening = null; // a ticket request in flight
    this.ended = false;
    this.onOnline = () => this.#reconnectNow();
    globalThis.addEventListener?.("online", this.onOnline);
  }

  // --- Public API --------------------------------------------------------------------

  /** Log in (or reuse a token), open the socket and wait for `connected`. */
  async connect({ username, password, token } = {}) {
    this.ended = false;
    if (token) {
      this.token = token;
    } else {
      const body = { username, password };
      if (this.deviceId) body.deviceId = this.deviceId;
      const response = await this.fetch(`${this.options.baseUrl}/api/auth/token/`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const payload = await response.json();
      if (!response.ok) throw new ProtocolError(payload);
      this.token = payload.token;
      this.tokenExpiresAt = payload.expiresAt ?? null;
      this.deviceId = payload.deviceId;
      this.storage?.setItem(this.options.deviceIdKey, payload.deviceId);
    }
    return this.#open();
  }

  /** Send a request; resolves with the reply carrying the same requestId, rejects on `error` or timeout. */
  request(type, payload = {}, { timeout = this.options.requestTimeoutMs } = {}) {
    if (this.state !== "open") return Promise.reject(new Error(`not connected (${this.state})`));
    const requestId = payload.requestId ?? newRequestId();
    const message = { type, requestId, timestamp: this.now(), deviceId: this.deviceId, ...payload };
    if (type === "subscribe_market" && message.flowControl === undefined && this.options.flowControl) {
      message.flowControl = true;
    }
    return new Promise((resolve, reject) => {
      const timer = this.setTimer(() => {
        this.pending.delete(requestId);
        reject(new RequestTimeout(type, requestId, timeout));
      }, timeout);
      this.pending.set(requestId, { resolve, reject, timer, type });
      this.#send(message);
    });
  }

  /** Close for good (no reconnection). */
  close() {
    this.ended = true;
    this.#clearTimers();
    globalThis.removeEventListener?.("online", this.onOnline);
    this.#failPending(new Error("connection closed by the client"));
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "client closed");
    }
    this.#setState("closed");
  }

  // --- Socket lifecycle -----------------------------------------------------------------

  #url() {
    const base = this.options.baseUrl || globalThis.location?.origin || "";
    const wsBase = base.replace(/^http/, "ws");
    const query = `token=${encodeURIComponent(this.token)}&deviceId=${encodeURIComponent(this.deviceId)}`;
    return `${wsBase}/ws/session/?${query}`;
  }

  /** The socket URL with a fresh single-use ticket instead of the token (docs/protocol.md section 2). */
  async #ticketUrl() {
    const response = await this.fetch(`${this.options.baseUrl}/api/auth/ticket/`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}` },
    });
    const payload = await response.json();
    if (!response.ok) throw new ProtocolError(payload);
    const base = this.options.baseUrl || globalThis.location?.origin || "";
    const query = `ticket=${encodeURIComponent(payload.ticket)}&deviceId=${encodeURIComponent(this.deviceId)}`;
    return `${base.replace(/^http/, "ws")}/ws/session/?${query}`;
  }

  #open() {
    if (this.socket || this.opening) return this.opening ?? Promise.resolve(this.session); // never two sockets at once
    this.#setState(this.session ? "reconnecting" : "connecting");
    if (!this.options.useTickets) return this.#openSocket(this.#url());
    this.opening = this.#ticketUrl().then(
      (url) => {
        this.opening = null;
        return this.#openSocket(url);
      },
      (error) => {
        this.opening = null;
        const final = { 401: "auth_failed", 403: "device_rejected" }[statusOf(error?.code)];
        if (final) this.#end(final, null, error.message);
        else if (!this.ended) this.#scheduleReconnect(); // the network or a throttle: retry with backoff
        throw error;
      },
    );
    return this.opening;
  }

  #openSocket(url) {
    return new Promise((resolve, reject) => {
      const subprotocol = this.codec?.subprotocol;
      const socket = subprotocol ? new this.WebSocket(url, [subprotocol]) : new this.WebSocket(url);
      if (subprotocol) socket.binaryType = "arraybuffer";
      this.socket = socket;
      let settled = false;
      socket.onmessage = (event) => {
        this.lastHeardAt = this.now();
        // The frame's kind says its encoding: a server that did not take the subprotocol sends text.
        const message = typeof event.data === "string" ? JSON.parse(event.data) : this.codec.decode(event.data);
        if (!settled && message.type === "connected") {
          settled = true;
          this.#onConnected(message);
          resolve(message);
        }
        this.#dispatch(message);
      };
      socket.onclose = (event) => {
        if (this.socket === socket) this.socket = null;
        this.#stopHeartbeats();
        this.#stopTokenRenewal();
        this.#failPending(new Error(`connection closed (${event.code})`));
        if (!settled) {
          settled = true;
          const final = FINAL_CODES[event.code];
          if (final && !this.session) {
            this.#end(final, event.code, event.reason);
            reject(new Error(`connection refused: ${final} (${event.code})`));
            return;
          }
          if (!this.session) {
            // The very first connect failed: report it, but keep retrying like any drop.
            reject(new Error(`connection failed (${event.code})`));
          }
        }
        this.#onClose(event.code, event.reason);
      };
    });
  }

  #onConnected(message) {
    const resumed = this.session !== null;
    this.marketWindow = 0; // a new socket sends every tick until it subscribes with flow control
    this.ticksUnacknowledged = 0;
    const previousToken = this.sessionToken;
    this.session = message;
    this.sessionToken = message.sessionToken;
    this.attempt = 0;
    this.retryAfterMs = null;
    this.quality = new QualityMeter(message.heartbeatInterval);
    this.#setState("open");
    this.#startHeartbeats(message.heartbeatInterval, message.heartbeatTimeout);
    if (message.tokenExpiresAt) this.tokenExpiresAt = message.tokenExpiresAt;
    this.#scheduleTokenRenewal();
    if (resumed && previousToken && message.sessionId === this.stream.sessionId) {
      // After a drop, resume the session and get the pushes missed meanwhile (docs/protocol.md section 5).
      this.#resume(previousToken, this.socket, 0);
    } else {
      // A new session (or the first connection): its stream starts where the server says.
      this.stream = new StreamTracker();
      this.stream.sessionId = message.sessionId;
      this.stream.reset(message.sessionEpoch, message.sessionSeq);
    }
  }

  // `reconnect` on a busy server (service_unavailable, server_busy, no reply in time) is tried again
  // on this socket, after the error's retryAfterMs or the backoff; pushes missed meanwhile stay
  // in the server's stream. Past RESUME_ATTEMPTS, or on another error, a resync from the last
  // applied position stands in, so no push is skipped silently.
  #resume(previousToken, socket, attempt) {
    const position = this.stream.epoch === null ? {} : { lastSessionSeq: this.stream.last, sessionEpoch: this.stream.epoch };
    this.request("reconnect", { sessionToken: previousToken, ...position }).then(
      (result) => this.#emit("resumed", result),
      (error) => {
        if (this.socket !== socket || this.state !== "open") return; // a newer socket resumes for itself
        const retryable = error instanceof RequestTimeout || RETRYABLE_ERRORS.has(error.code);
        if (retryable && attempt + 1 < RESUME_ATTEMPTS) {
          const hinted = error.serverMessage?.retryAfterMs;
          const delay = Number.isFinite(hinted) ? hinted : backoffDelay(attempt, { baseMs: this.options.backoffBaseMs, capMs: this.options.backoffCapMs }, this.random);
          this.retryAfterMs = null; // the slot was for this request, not for the next handshake
          this.setTimer(() => {
            if (this.socket === socket && this.state === "open") this.#resume(previousToken, socket, attempt + 1);
          }, delay);
          return;
        }
        if (this.stream.epoch !== null) {
          const last = { lastSessionSeq: this.stream.last, sessionEpoch: this.stream.epoch };
          this.request("request_resync", last).catch(() => {});
        }
      },
    );
  }

  #onClose(code, reason) {
    if (this.ended) return;
    const final = FINAL_CODES[code];
    if (final) {
      this.#end(final, code, reason);
      return;
    }
    // RECONNECT_CODES, and anything unknown (a proxy's code, 1000 from a restarting server): retry with backoff.
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.ended || this.reconnectTimer !== null) return;
    if (this.attempt >= this.options.maxAttempts) {
      this.#end("gave_up", null, `no connection after ${this.attempt} attempts`);
      return;
    }
    const delay =
      this.retryAfterMs ??
      backoffDelay(this.attempt, { baseMs: this.options.backoffBaseMs, capMs: this.options.backoffCapMs }, this.random);
    this.retryAfterMs = null;
    this.attempt += 1;
    this.#setState("reconnecting");
    this.reconnectTimer = this.setTimer(() => {
      this.reconnectTimer = null;
      this.#open().catch(() => {});
    }, delay);
    this.#emit("retry", { attempt: this.attempt, delayMs: delay });
  }

  #reconnectNow() {
    // The browser came back online: retry at once instead of waiting out the backoff.
    if (this.ended || this.state !== "reconnecting" || this.socket) return;
    this.#clearReconnectTimer();
    this.attempt = 0;
    this.#open().catch(() => {});
  }

  #end(reason, code, message) {
    this.ended = true;
    this.#clearTimers();
    this.#setState("closed");
    this.#emit("ended", { reason, code, message });
  }

  // --- Messages -------------------------------------------------------------------------

  #dispatch(message) {
    if (message.sessionSeq !== undefined && message.type !== "connected" && message.type !== "reconnect_result" && message.type !== "session_resync") {
      for (const due of this.stream.accept(message)) this.#deliver(due);
      this.#watchGap();
      return;
    }
    this.#deliver(message);
    if ((message.type === "reconnect_result" && message.success) || message.type === "session_resync") {
      for (const due of this.stream.reset(message.sessionEpoch, message.sessionSeq)) this.#deliver(due);
      this.#watchGap();
    }
  }

  #watchGap() {
    if (!this.stream.hasGap) {
      if (this.gapTimer !== null) this.clearTimer(this.gapTimer);
      this.gapTimer = null;
      return;
    }
    if (this.gapTimer !== null) return;
    this.gapTimer = this.setTimer(() => {
      this.gapTimer = null;
      if (!this.stream.hasGap || this.state !== "open") return;
      // The server fills holes itself; one that stays means a push it could not replay in time.
      const position = { lastSessionSeq: this.stream.last, sessionEpoch: this.stream.epoch };
      this.request("request_resync", position).catch(() => {});
    }, this.options.gapTimeoutMs);
  }

  #deliver(message) {
    if (message.type === "heartbeat_ack") this.#onHeartbeatAck(message);
    if (message.type === "shutdown") this.retryAfterMs = message.reconnectAfterMs;
    // A busy server's slot (server_busy, before close 4013): come back then, not on the backoff's schedule.
    if (message.type === "error" && Number.isFinite(message.retryAfterMs)) this.retryAfterMs = message.retryAfterMs;
    if (message.type === "simulator_status_update") this.simulatorStatus = message.simulatorStatus;
    const waiting = message.requestId ? this.pending.get(message.requestId) : undefined;
    if (waiting) {
      this.pending.delete(message.requestId);
      this.clearTimer(waiting.timer);
      if (message.type === "error") waiting.reject(new ProtocolError(message));
      else waiting.resolve(message);
    }
    this.#emit("message", message);
    this.#emit(message.type, message);
    if (message.type === "market_subscription") {
      this.marketWindow = message.window ?? 0;
      this.ticksUnacknowledged = 0;
      this.books.clear();
    }
    if (message.type === "book" || (message.type === "exchange_data" && message.books)) {
      this.#keepBooks(message);
    }
    if (message.type === "exchange_data" && this.marketWindow) {
      this.#acknowledge(message.seq);
    }
  }

  /** Keep the books; ask again (`request_book`) for any out of step: a missed update or a checksum mismatch. */
  #keepBooks(message) {
    const { changed, stale } = this.books.apply(message);
    for (const symbol of changed) this.#emit("orderbook", { symbol, book: this.books.books.get(symbol) });
    if (stale.length) this.request("request_book", { symbols: stale }).catch(() => {});
  }

  /** A tick was applied (its listeners ran): acknowledge at half the window, so the server never waits. */
  #acknowledge(seq) {
    this.ticksUnacknowledged += 1;
    if (this.ticksUnacknowledged * 2 < this.marketWindow) return;
    this.ticksUnacknowledged = 0;
    this.#send({ type: "market_ack", deviceId: this.deviceId, seq });
  }

  #send(message) {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return;
    const packed = this.codec && socket.protocol === this.codec.subprotocol;
    socket.send(packed ? this.codec.encode(message) : JSON.stringify(message));
  }

  #failPending(error) {
    for (const [requestId, waiting] of this.pending) {
      this.clearTimer(waiting.timer);
      waiting.reject(error);
      this.pending.delete(requestId);
    }
  }

  // --- Token renewal (docs/protocol.md section 2) -----------------------------------------

  #scheduleTokenRenewal() {
    this.#stopTokenRenewal();
    if (!this.tokenExpiresAt) return;
    const left = this.tokenExpiresAt - this.now();
    // Well before expiry, and at least half-way through what is left, so a short-lived token is renewed too.
    const delay = Math.max(0, left - Math.min(this.options.tokenRenewBeforeMs, left / 2));
    this.tokenTimer = this.setTimer(() => {
      this.tokenTimer = null;
      this.request("refresh_token").then(
        (reply) => {
          this.token = reply.token;
          this.tokenExpiresAt = reply.expiresAt;
          this.#emit("token", { token: reply.token, expiresAt: reply.expiresAt });
          this.#scheduleTokenRenewal();
        },
        () => {
          // Refused or timed out: try again half-way to expiry (a closed socket reschedules on `connected`).
          if (this.state === "open" && this.tokenExpiresAt - this.now() > 1_000) this.#scheduleTokenRenewal();
        },
      );
    }, delay);
  }

  #stopTokenRenewal() {
    if (this.tokenTimer !== null) this.clearTimer(this.tokenTimer);
    this.tokenTimer = null;
  }

  // --- Heartbeats -----------------------------------------------------------------------

  #startHeartbeats(intervalMs, timeoutMs) {
    this.#stopHeartbeats();
    // Nothing heard, not even an ack, for longer than the server waits for us: the path to it is
    // gone (a pulled cable sends no close), so give the socket up and reconnect (docs/partitions.md).
    const silenceMs = (timeoutMs ?? 3 * intervalMs) + intervalMs;
    const beat = () => {
      if (this.socket && this.lastHeardAt !== null && this.now() - this.lastHeardAt > silenceMs) {
        this.#abandon(this.socket, `nothing heard for ${this.now() - this.lastHeardAt} ms`);
        return;
      }
      if (this.beatSentAt !== null) {
        // The previous beat got no ack within a whole interval.
        this.#setQuality(this.quality.missed(), null);
      }
      this.beatSentAt = this.now();
      const message = {
        type: "heartbeat",
        timestamp: this.beatSentAt,
        deviceId: this.deviceId,
        connectionQuality: this.quality.quality,
        sessionStatus: this.state === "open" ? "active" : "pending",
        simulatorStatus: this.simulatorStatus ?? this.session?.simulatorStatus ?? "stopped",
      };
      if (this.lastRttMs !== null) message.rttMs = this.lastRttMs;
      this.#send(message);
      this.heartbeatTimer = this.setTimer(beat, intervalMs);
    };
    beat();
  }

  #abandon(socket, reason) {
    // As if it had closed: its handlers go first, so a late close event cannot count twice.
    const onclose = socket.onclose;
    socket.onclose = null;
    socket.onmessage = null;
    try {
      socket.close();
    } catch {
      // already closing
    }
    onclose?.({ code: 1006, reason });
  }

  #onHeartbeatAck(message) {
    if (this.beatSentAt === null) return;
    const rttMs = this.now() - this.beatSentAt;
    this.beatSentAt = null;
    this.lastRttMs = rttMs;
    this.simulatorStatus = message.simulatorStatus;
    this.#setQuality(this.quality.observe(rttMs), rttMs);
  }

  #setQuality(quality, rttMs) {
    this.#emit("quality", { quality, rttMs });
  }

  #stopHeartbeats() {
    if (this.heartbeatTimer !== null) this.clearTimer(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.beatSentAt = null;
  }

  // --- Plumbing -------------------------------------------------------------------------

  #clearReconnectTimer() {
    if (this.reconnectTimer !== null) this.clearTimer(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  #clearTimers() {
    this.#stopHeartbeats();
    this.#stopTokenRenewal();
    this.#clearReconnectTimer();
    if (this.gapTimer !== null) this.clearTimer(this.gapTimer);
    this.gapTimer = null;
  }

  #setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.#emit("state", { state, previous });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
