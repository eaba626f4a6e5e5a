// Declarations of ./connection-manager.js (kept by hand; test/declarations.test.mjs checks them
// against the module, and compiles a client written against them).
import type { OrderBook, BookKeeper } from "./order-books.js";
import type {
  ClientMessageByType,
  Connected,
  ErrorDetail,
  ErrorMessage,
  ReconnectResult,
  ServerMessage,
  ServerMessageByType,
} from "./protocol.js";

export interface Defaults {
  /** "" = this page's origin */
  baseUrl: string;
  /** the first retry waits up to this long */
  backoffBaseMs: number;
  /** no retry waits longer than this */
  backoffCapMs: number;
  /** reconnect attempts before giving up (state "closed") */
  maxAttempts: number;
  /** a request without a reply within this fails */
  requestTimeoutMs: number;
  /** a hole in the session stream not filled within this asks for a resync */
  gapTimeoutMs: number;
  /** open sockets with a single-use ticket, keeping the token out of URLs */
  useTickets: boolean;
  /** renew the access token in-band this long before it expires */
  tokenRenewBeforeMs: number;
  /** `subscribe_market` asks for flow control and the manager acknowledges ticks */
  flowControl: boolean;
  /** where the device ID is kept in storage */
  deviceIdKey: string;
}

export declare const DEFAULTS: Readonly<Defaults>;
export declare const RECONNECT_CODES: ReadonlySet<number>;
export declare const FINAL_CODES: Readonly<Record<number, EndReason>>;
export declare const RETRYABLE_ERRORS: ReadonlySet<string>;

/** How messages travel when not as JSON text: the package's `msgpackCodec` is one. */
export interface Codec {
  /** asked for at the handshake; the codec is used only if the server agrees */
  readonly subprotocol: string;
  encode(message: object): Uint8Array | ArrayBuffer;
  decode(data: ArrayBuffer): unknown;
}

export interface ConnectionOptions extends Partial<Defaults> {
  /** null or left out: JSON text frames */
  codec?: Codec | null;
  fetch?: typeof globalThis.fetch;
  WebSocket?: new (url: string, protocols?: string[]) => WebSocket;
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
  random?: () => number;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  now?: () => number;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";
export type Quality = "good" | "degraded" | "poor";
export type EndReason =
  | "auth_failed"
  | "device_rejected"
  | "connection_replaced"
  | "session_stopped"
  | "unsupported_subprotocol"
  | "gave_up";

/** The manager's own events, beside one per server message type. */
export interface ConnectionEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  quality: { quality: Quality; rttMs: number | null };
  ended: { reason: EndReason; code: number | null; message: string };
  token: { token: string; expiresAt: number };
  retry: { attempt: number; delayMs: number };
  resumed: ReconnectResult;
  /** every server message */
  message: ServerMessage;
  /** a book kept from `exchange_data.books` or a `book` reply changed */
  orderbook: { symbol: string; book: OrderBook };
}

export type ConnectionEventMap = ServerMessageByType & ConnectionEvents;

/** The fields a request's caller gives: the manager adds `type`, `requestId`, `timestamp` and `deviceId`. */
export type RequestPayload<T extends keyof ClientMessageByType> = Omit<
  ClientMessageByType[T],
  "type" | "requestId" | "timestamp" | "deviceId"
> & { requestId?: string };

/** Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2^attempt)). */
export declare function backoffDelay(
  attempt: number,
  bounds?: { baseMs?: number; capMs?: number },
  random?: () => number,
): number;

/** Connection quality from heartbeat round trips: the worst of the last `window` decides. */
export declare class QualityMeter {
  constructor(intervalMs: number, window?: number);
  observe(rttMs: number): Quality;
  missed(): Quality;
  readonly quality: Quality;
}

/** The standard `error` message, as a rejection. */
export declare class ProtocolError extends Error {
  constructor(message: ErrorMessage | { code: string; message: string; details?: ErrorDetail[] });
  readonly code: string;
  readonly details: ErrorDetail[];
  readonly serverMessage: ErrorMessage;
}

export declare class RequestTimeout extends Error {
  constructor(type: string, requestId: string, timeoutMs: number);
}

/** The session stream as applied: numbered pushes once and in order, holding any ahead of a hole. */
export declare class StreamTracker {
  epoch: string | null;
  last: number;
  readonly hasGap: boolean;
  reset(epoch: string, seq: number): ServerMessage[];
  accept(message: ServerMessage): ServerMessage[];
}

/** One session connection with automatic reconnection (docs/frontend.md). */
export declare class ConnectionManager extends EventTarget {
  constructor(options?: ConnectionOptions);
  readonly options: Readonly<Defaults & ConnectionOptions>;
  readonly state: ConnectionState;
  /** the books kept after a `subscribe_market` with depth and `bookDeltas` */
  readonly books: BookKeeper;
  readonly token: string | null;
  readonly tokenExpiresAt: number | null;
  readonly deviceId: string | null;
  /** the last `connected` message */
  readonly session: Connected | null;
  readonly lastRttMs: number | null;
  /** the open socket (its `protocol` says whether the server took the codec's subprotocol) */
  readonly socket: WebSocket | null;
  readonly stream: StreamTracker;

  /** Log in (or reuse a token), open the socket and wait for `connected`. */
  connect(credentials: { username: string; password: string } | { token: string }): Promise<Connected>;
  /** Send a request; resolves with the reply carrying its requestId, rejects with ProtocolError or RequestTimeout. */
  request<T extends keyof ClientMessageByType>(
    type: T,
    payload?: RequestPayload<T>,
    options?: { timeout?: number },
  ): Promise<ServerMessage>;
  /** Close for good (no reconnection). */
  close(): void;

  addEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (event: CustomEvent<ConnectionEventMap[K]>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (event: CustomEvent<ConnectionEventMap[K]>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
