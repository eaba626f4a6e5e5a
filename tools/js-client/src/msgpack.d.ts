// Declarations of ./msgpack.js (kept by hand; test/declarations.test.mjs checks them against the module).
import type { Codec } from "./connection-manager.js";

export declare const MSGPACK_SUBPROTOCOL: "tradesim.msgpack";

/** Every message as MessagePack in binary frames: `new ConnectionManager({ codec: msgpackCodec })`. */
export declare const msgpackCodec: Codec;
