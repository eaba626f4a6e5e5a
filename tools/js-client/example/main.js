// The package from a bundled page: log in, keep one book from snapshot and deltas (every update's
// checksum verified by the BookKeeper), place an order. ?service=<the service's origin>
// &encoding=json|msgpack&symbol=AAPL. The Chromium test (tests/e2e/browser/test_js_client_package.py)
// builds this page against the packed tarball and reads `window.outcome`.
import { ConnectionManager } from "@tradesim/client";
import { msgpackCodec } from "@tradesim/client/msgpack";

const params = new URLSearchParams(location.search);
const service = params.get("service") ?? "http://127.0.0.1:8000";
const encoding = params.get("encoding") ?? "json";
const symbol = params.get("symbol") ?? "AAPL";
const UPDATES_TO_VERIFY = 3;

const cm = new ConnectionManager({ baseUrl: service, useTickets: true, codec: encoding === "msgpack" ? msgpackCodec : null });
const $ = (id) => document.getElementById(id);
$("service").textContent = service;
$("encoding").textContent = encoding;
$("symbol").textContent = symbol;
cm.addEventListener("state", (event) => ($("state").textContent = event.detail.state));

function draw(book) {
  const rows = [
    ...book.bestAsks(5).reverse().map(([price, size]) => `<tr class="ask"><td></td><td>${price}</td><td>${size}</td></tr>`),
    ...book.bestBids(5).map(([price, size]) => `<tr class="bid"><td>${size}</td><td>${price}</td><td></td></tr>`),
  ];
  $("ladder").innerHTML = rows.join("");
  $("version").textContent = book.seq;
}

function updatesVerified(count) {
  let verified = 0;
  return new Promise((resolve) => {
    cm.addEventListener("orderbook", (event) => {
      // Past the count the page shows what it waited for: updates go on arriving while it places its order.
      if (event.detail.symbol !== symbol || verified === count) return;
      draw(event.detail.book);
      verified += 1;
      $("verified").textContent = verified;
      if (verified === count) resolve(event.detail.book);
    });
  });
}

window.outcome = undefined;
const run = async () => {
  await cm.connect({ username: params.get("username") ?? "demo", password: params.get("password") ?? "demo-password" });
  const books = updatesVerified(UPDATES_TO_VERIFY + 1); // the snapshot, then the updates
  await cm.request("start_simulator").catch((error) => {
    if (error.code !== "simulator_already_running") throw error;
  });
  await cm.request("subscribe_market", { symbols: [symbol], depth: 20, bookDeltas: true, trades: true });
  const book = await books;
  const placed = await cm.request("place_order", { symbol, side: "buy", orderType: "market", quantity: 1 });
  $("order").textContent = `order ${placed.order.orderId}: ${placed.order.status}`;
  return {
    ok: true,
    subprotocol: cm.socket?.protocol ?? null,
    bookSeq: book.seq,
    bookChecksum: book.checksum(),
    levels: [book.bids.size, book.asks.size],
    orderType: placed.type,
  };
};
run().then(
  (result) => (window.outcome = result),
  (error) => (window.outcome = { ok: false, error: `${error.name}: ${error.message}` }),
);
