// A client written against the package's declarations; test/declarations.test.mjs compiles it.
// Each @ts-expect-error marks a mistake the declarations must catch (an unused one is an error too).
import { BookKeeper, ConnectionManager, ProtocolError, type ExchangeData, type OrderBook } from "@tradesim/client";
import { msgpackCodec } from "@tradesim/client/msgpack";
import type { PlaceOrder } from "@tradesim/client/protocol";

export async function trade(): Promise<number> {
  const cm = new ConnectionManager({ baseUrl: "http://127.0.0.1:8000", codec: msgpackCodec, useTickets: true });
  cm.addEventListener("exchange_data", (event) => {
    const tick: ExchangeData = event.detail;
    const price: number | undefined = tick.symbols.AAPL?.price;
    return price;
  });
  cm.addEventListener("orderbook", (event) => {
    const book: OrderBook = event.detail.book;
    const best: number | undefined = book.bestBids(1)[0]?.[0];
    return best;
  });
  cm.addEventListener("state", (event) => event.detail.state === "open");
  // @ts-expect-error: no such state
  cm.addEventListener("state", (event) => event.detail.state === "opened");
  await cm.connect({ username: "demo", password: "demo-password" });
  await cm.request("subscribe_market", { symbols: ["AAPL"], depth: 20, bookDeltas: true, trades: true });
  const order: Omit<PlaceOrder, "type" | "requestId" | "timestamp" | "deviceId"> = {
    symbol: "AAPL",
    side: "buy",
    orderType: "market",
    quantity: 1,
  };
  await cm.request("place_order", order);
  // @ts-expect-error: a side the protocol does not have
  await cm.request("place_order", { symbol: "AAPL", side: "long", orderType: "market", quantity: 1 });
  // @ts-expect-error: no such request
  await cm.request("place_orders", {});
  try {
    await cm.request("cancel_order", { orderId: "o-1" });
  } catch (error) {
    if (error instanceof ProtocolError) return error.details.length;
  }
  const kept: BookKeeper = cm.books;
  cm.close();
  return kept.books.size;
}
