// MessagePack for the session protocol (docs/protocol.md, "Encodings"): pass `msgpackCodec` as the
// ConnectionManager's `codec` and every message travels as MessagePack in binary frames. A module
// of its own so the JSON-only console, served without a bundler, never imports the library.
import { decode, encode } from "@msgpack/msgpack";

/** The subprotocol the server answers with MessagePack frames. */
export const MSGPACK_SUBPROTOCOL = "tradesim.msgpack";

export const msgpackCodec = Object.freeze({
  subprotocol: MSGPACK_SUBPROTOCOL,
  // A key whose value is undefined is left out, as JSON.stringify leaves it out.
  encode: (message) => encode(message, { ignoreUndefined: true }),
  decode: (data) => decode(data),
});
