"""The example strategy (moving_average.py) trading live: logs in, starts the simulator if it is not
running, and runs the crossover on every tick of the simulator's market for `--seconds`.

    python tools/python-client/examples/ma_crossover.py --user demo --password demo-password --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio

from moving_average import MovingAverage  # beside this file (a script's directory is on the path)
from tradesim import Client, ProtocolError
from tradesim.backtest import trade_live


async def run(args: argparse.Namespace) -> int:
    async with Client(args.server) as client:
        await client.connect(username=args.user, password=args.password)
        if client.simulator_status != "running":
            try:
                await client.request("start_simulator")
            except ProtocolError as error:
                if error.code != "simulator_already_running":
                    raise
        strategy = MovingAverage(fast=args.fast, slow=args.slow, quantity=args.quantity, symbol=args.symbol)

        def placed(order: dict) -> None:
            print(f"{order['side']} {order['quantity']} {order['symbol']}: order {order['orderId']}", flush=True)

        def refused(refusal: dict) -> None:  # say, insufficient_cash: the next signal is another chance
            print(f"{refusal['ticket']['side']} refused: {refusal['code']}", flush=True)

        result = await trade_live(client, strategy.on_bar, seconds=args.seconds, on_placed=placed, on_refused=refused)
        equity = client.account["equity"] if client.account else None
        print(f"done: {len(result.placed)} orders, equity {equity}")
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
