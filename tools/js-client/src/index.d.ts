// Declarations of ./index.js.
export * from "./connection-manager.js";
export * from "./order-books.js";
export type * from "./protocol.js";
