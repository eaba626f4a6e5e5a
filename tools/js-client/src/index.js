// @tradesim/client: the browser client of the trading simulator's session protocol.
// MessagePack lives in "@tradesim/client/msgpack", so a JSON-only frontend never loads it.
export {
  backoffDelay,
  ConnectionManager,
  DEFAULTS,
  FINAL_CODES,
  ProtocolError,
  QualityMeter,
  RECONNECT_CODES,
  RequestTimeout,
  RETRYABLE_ERRORS,
  StreamTracker,
} from "./connection-manager.js";
export { BookKeeper, CHECKSUM_LEVELS, crc32, numberText, OrderBook } from "./order-books.js";
