"""A moving-average crossover: the example strategy, the same code in a backtest and live.

Holds `quantity` of one symbol while the average of its last `fast` prices is above that of its last
`slow`, flat otherwise. It keeps its own book (`holding`) rather than reading the account, so its
decisions depend on the prices alone: the same replay gives the same orders, at any speed.

    tradesim backtest tools/python-client/examples/moving_average.py --dataset 1 --from 2008-01-01 --to 2009-12-31
    python tools/python-client/examples/ma_crossover.py --seconds 60      # live, on the simulator's market
"""

from __future__ import annotations

from collections import deque
from typing import Any


class MovingAverage:
    def __init__(self, *, fast: int = 10, slow: int = 30, quantity: float = 10, symbol: str | None = None) -> None:
        self.fast, self.slow, self.quantity, self.symbol = fast, slow, quantity, symbol
        self.prices: deque[float] = deque(maxlen=slow)
        self.holding = False

    def on_bar(self, bar: Any, broker: Any) -> None:
        symbol = self.symbol or sorted(bar.prices)[0]
        if symbol not in bar.prices:
            return
        self.prices.append(bar.prices[symbol])
        if len(self.prices) < self.slow:
            return
        fast = sum(list(self.prices)[-self.fast :]) / self.fast
        slow = sum(self.prices) / self.slow
        if fast > slow and not self.holding:
            broker.buy(symbol, self.quantity)
            self.holding = True
        elif fast < slow and self.holding:
            broker.sell(symbol, self.quantity)
            self.holding = False


# `tradesim backtest` calls the file's on_bar: a fresh strategy each time the file is loaded.
on_bar = MovingAverage().on_bar
