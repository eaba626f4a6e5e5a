// Order books kept from `exchange_data.books` (and `book` replies): a snapshot, then updates, each checked by its checksum
// (docs/protocol.md, "Books as snapshot and deltas"). ConnectionManager keeps one BookKeeper and
// asks for a fresh snapshot (`request_book`) of any book that falls out of step. The Python twin is
// tradesim.books; both are checked against the server's checksums.

export const CHECKSUM_LEVELS = 10;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (zlib's, unsigned) of an ASCII string. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i += 1) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A number as the checksum writes it: its shortest round-trip decimal, no exponent, no trailing ".0". */
export function numberText(value) {
  const text = String(value);
  const e = text.indexOf("e");
  if (e < 0) return text;
  const sign = text.startsWith("-") ? "-" : "";
  const mantissa = text.slice(sign.length, e);
  const dot = mantissa.indexOf(".");
  const digits = mantissa.replace(".", "");
  const point = (dot < 0 ? mantissa.length : dot) + Number(text.slice(e + 1));
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** One symbol's book: `seq` is its version (the tick it last changed at). */
export class OrderBook {
  constructor(symbol, seq) {
    this.symbol = symbol;
    this.seq = seq;
    this.bids = new Map(); // price -> size
    this.asks = new Map();
  }

  /** [price, size] from the highest bid down (the first `levels`, or all). */
  bestBids(levels) {
    return [...this.bids].sort((a, b) => b[0] - a[0]).slice(0, levels);
  }

  /** [price, size] from the lowest ask up. */
  bestAsks(levels) {
    return [...this.asks].sort((a, b) => a[0] - b[0]).slice(0, levels);
  }

  /** Set the levels given; a size of 0 removes its level. */
  apply(bids, asks) {
    for (const [levels, changes] of [[this.bids, bids], [this.asks, asks]]) {
      for (const [price, size] of changes) {
        if (size) levels.set(price, size);
        else levels.delete(price);
      }
    }
  }

  checksum() {
    const bids = this.bestBids(CHECKSUM_LEVELS);
    const asks = this.bestAsks(CHECKSUM_LEVELS);
    const parts = [];
    for (let level = 0; level < CHECKSUM_LEVELS; level += 1) {
      for (const side of [bids, asks]) {
        if (level < side.length) parts.push(numberText(side[level][0]), numberText(side[level][1]));
      }
    }
    return crc32(parts.join(":"));
  }
}

/** The books of one connection's `exchange_data.books` and `book` replies, by symbol. */
export class BookKeeper {
  constructor() {
    this.books = new Map();
  }

  /**
   * Apply the `books` of a message (`exchange_data` or a `book` reply). Returns the symbols whose book it changed, and those now out of step
   * (an update for a book not held, or a checksum that does not match): dropped, to be asked for
   * again with `request_book`.
   */
  apply(message) {
    const changed = [];
    const stale = [];
    for (const [symbol, change] of Object.entries(message.books)) {
      let book;
      if (change.action === "snapshot") {
        book = new OrderBook(symbol, change.seq);
      } else {
        book = this.books.get(symbol);
        if (!book || book.seq !== change.prevSeq) {
          this.books.delete(symbol);
          stale.push(symbol);
          continue;
        }
      }
      book.apply(change.bids, change.asks);
      if (book.checksum() !== change.checksum) {
        this.books.delete(symbol);
        stale.push(symbol);
        continue;
      }
      book.seq = change.seq;
      this.books.set(symbol, book);
      changed.push(symbol);
    }
    return { changed, stale };
  }

  clear() {
    this.books.clear();
  }
}
