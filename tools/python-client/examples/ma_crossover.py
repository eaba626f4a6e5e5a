"""A moving-average crossover bot on the tradesim client: long one symbol while its fast average of
prices is above its slow one, flat otherwise.

    python tools/python-client/examples/ma_crossover.py --user demo --password demo-password --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque

from tradesim import Client, ProtocolError


async def run(args: argparse.Namespace) -> int:
    async with Client(args.server) as client:
        await client.connect(username=args.user, password=args.password)
        if client.simulator_status != "running":
            try:
                await client.request("start_simulator")
            except ProtocolError as error:
                if error.code != "simulator_already_running":
                    raise
        prices: deque[float] = deque(maxlen=args.slow)
        trades = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.seconds
        ticks = client.messages("exchange_data")
        while loop.time() < deadline:
            try:
                tick = await asyncio.wait_for(anext(ticks), deadline - loop.time())
            except TimeoutError:
                break
            if args.symbol not in tick["symbols"]:
                continue
            prices.append(tick["symbols"][args.symbol]["price"])
            if len(prices) < args.slow:
                continue
            fast = sum(list(prices)[-args.fast :]) / args.fast
            slow = sum(prices) / len(prices)
            position = client.positions.get(args.symbol)
            held = position["quantity"] if position else 0
            busy = any(o["symbol"] == args.symbol and o["status"] in ("new", "partially_filled")
                       for o in client.orders.values())  # fmt: skip
            side = "buy" if fast > slow and held == 0 else "sell" if fast < slow and held > 0 else None
            if side is None or busy:
                continue
            quantity = args.quantity if side == "buy" else held
            try:
                placed = await client.request(
                    "place_order", symbol=args.symbol, side=side, orderType="market", quantity=quantity
                )
            except ProtocolError as error:  # say, insufficient_cash: wait for the next signal
                print(f"{side} refused: {error.code}")
                continue
            trades += 1
            print(f"{side} {quantity} {args.symbol} at ~{prices[-1]} (fast {fast:.2f}, slow {slow:.2f}): "
                  f"order {placed['order']['orderId']}", flush=True)  # fmt: skip
        await ticks.aclose()
        equity = client.account["equity"] if client.account else None
        print(f"done: {trades} orders, equity {equity}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--fast", type=int, default=5, help="ticks in the fast average")
    parser.add_argument("--slow", type=int, default=20, help="ticks in the slow average")
    parser.add_argument("--quantity", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=60, help="trade for this long")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
