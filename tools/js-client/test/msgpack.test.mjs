// MessagePack through the ConnectionManager: asked for at the handshake, used only if the server agrees.
import assert from "node:assert/strict";
import { test } from "node:test";

import { decode } from "@msgpack/msgpack";

import { MSGPACK_SUBPROTOCOL, msgpackCodec } from "../src/msgpack.js";
import { connectedManager } from "./support.mjs";

test("the codec leaves out undefined keys as JSON does and packs whole numbers as integers", () => {
  const bytes = msgpackCodec.encode({ type: "market_ack", seq: 7, price: 100.5, deviceId: undefined });
  assert.deepEqual(decode(bytes), { type: "market_ack", seq: 7, price: 100.5 });
  // {seq: 7}: a one-key map, a three-letter string, then 7 as a positive fixint (not 7.0).
  assert.deepEqual([...msgpackCodec.encode({ seq: 7 })], [0x81, 0xa3, 0x73, 0x65, 0x71, 0x07]);
});

test("with the codec the socket asks for tradesim.msgpack and both directions travel as MessagePack", async () => {
  const { cm, opened } = await connectedManager({ codec: msgpackCodec }, { codec: msgpackCodec });
  const socket = opened[0];
  assert.deepEqual(socket.protocols, [MSGPACK_SUBPROTOCOL]);
  assert.equal(socket.binaryType, "arraybuffer");
  assert.equal(cm.state, "open");
  const reply = cm.request("request_session_info");
  const sent = socket.frames.at(-1);
  assert.ok(sent instanceof Uint8Array, "a binary frame");
  const request = socket.sent.at(-1);
  assert.equal(request.type, "request_session_info");
  socket.receive({ type: "session_info", requestId: request.requestId, sessionId: "s-1" });
  assert.equal((await reply).sessionId, "s-1");
  cm.close();
});

test("a server that does not take the subprotocol gets JSON, and its text frames are read", async () => {
  const { cm, opened } = await connectedManager({ codec: msgpackCodec }, { codec: msgpackCodec, agree: false });
  const socket = opened[0];
  assert.deepEqual(socket.protocols, [MSGPACK_SUBPROTOCOL]);
  const reply = cm.request("request_session_info");
  assert.equal(typeof socket.frames.at(-1), "string");
  socket.receive({ type: "session_info", requestId: socket.sent.at(-1).requestId, sessionId: "s-1" });
  assert.equal((await reply).sessionId, "s-1");
  cm.close();
});

test("without a codec no subprotocol is asked for: exactly the JSON frames of before", async () => {
  const { cm, opened } = await connectedManager();
  assert.deepEqual(opened[0].protocols, []);
  assert.equal(opened[0].binaryType, undefined);
  cm.close();
});
