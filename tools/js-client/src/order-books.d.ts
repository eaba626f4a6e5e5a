// Declarations of ./order-books.js (kept by hand; test/declarations.test.mjs checks them against the module).
import type { BookChange } from "./protocol.js";

/** Levels the checksum covers on each side. */
export declare const CHECKSUM_LEVELS: 10;

/** CRC-32 (zlib's, unsigned) of an ASCII string. */
export declare function crc32(text: string): number;

/** A number as the checksum writes it: its shortest round-trip decimal, no exponent, no trailing ".0". */
export declare function numberText(value: number): string;

/** `[price, size]` */
export type Level = [price: number, size: number];

/** One symbol's book: `seq` is its version (the tick it last changed at). */
export declare class OrderBook {
  constructor(symbol: string, seq: number);
  readonly symbol: string;
  seq: number;
  /** price -> size */
  readonly bids: Map<number, number>;
  readonly asks: Map<number, number>;
  /** From the highest bid down (the first `levels`, or all). */
  bestBids(levels?: number): Level[];
  /** From the lowest ask up. */
  bestAsks(levels?: number): Level[];
  /** Set the levels given; a size of 0 removes its level. */
  apply(bids: ReadonlyArray<ReadonlyArray<number>>, asks: ReadonlyArray<ReadonlyArray<number>>): void;
  checksum(): number;
}

/** The books of one connection's `exchange_data.books` and `book` replies, by symbol. */
export declare class BookKeeper {
  readonly books: Map<string, OrderBook>;
  /**
   * Apply a message's `books`: the symbols whose book changed, and those now out of step (dropped,
   * to be asked for again with `request_book`).
   */
  apply(message: { books: Record<string, BookChange> }): { changed: string[]; stale: string[] };
  clear(): void;
}
