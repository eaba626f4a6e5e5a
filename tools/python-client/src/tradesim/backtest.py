"""A strategy run bar by bar: against a replay in lock-step (`backtest`; the service's docs/replay.md,
"A backtest from code"), or live on whatever market the simulator trades (`trade_live`): the same
`on_bar` both ways.

A strategy is a function `on_bar(bar, broker)` (or a module defining it, for `tradesim backtest`): it
reads the bar, keeps what state it likes, and asks the broker for orders. The runner starts a replay
simulator whose clock waits for each bar to be acknowledged, then for every bar: calls the strategy,
places the orders it asked for (one after the other, each answered before the next), and only then
acknowledges the bar. So the bot, however slow, sees every bar, and an order it placed on a bar trades
on the bars after it: the same dataset, seed, profile and strategy give the same fills at any speed.

    import asyncio
    from tradesim import Client
    from tradesim.backtest import backtest

    def on_bar(bar, broker):
        if bar.seq == 1:
            broker.buy("SPX", 10)

    async def main():
        async with Client("http://127.0.0.1:8000", flow_control=False) as client:
            await client.connect(username="demo", password="demo-password")
            result = await backtest(client, on_bar, dataset_id="1", start="2008-01-01", end="2008-12-31")
            print(result.report["figures"]["sharpe"])

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from tradesim.client import Client
from tradesim.errors import ProtocolError

REACK_AFTER_S = 2.0
STOP_WAIT_S = 30.0
RATE_RETRIES, RATE_RETRY_S = (
    20,
    0.1,
)  # no bar since the last acknowledgement: it may have been lost (a worker taking over)


@dataclass(frozen=True)
class Bar:
    """One bar of the replay: its number (from 1), its market time (epoch ms) and each symbol's
    last price (the bar's close) with the rest of the `exchange_data` quote."""

    seq: int
    time: int
    prices: dict[str, float]
    quotes: dict[str, dict[str, Any]]

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.time / 1000, UTC)


class Broker:
    """What a strategy sees and asks for during a bar. Orders are placed once `on_bar` returns, in the
    order asked; `cash` and `position` are the account as the client last heard it (a fill of this bar
    may not be in yet: a strategy that must be exact keeps its own book)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.orders: list[dict[str, Any]] = []

    def order(self, **ticket: Any) -> None:
        """Any ticket `place_order` takes (symbol, side, orderType, quantity, limitPrice, ...)."""
        self.orders.append(ticket)

    def buy(self, symbol: str, quantity: float, **ticket: Any) -> None:
        """A market buy (or with `orderType`/`limitPrice`..., any other)."""
        self.order(symbol=symbol, side="buy", orderType=ticket.pop("orderType", "market"), quantity=quantity, **ticket)

    def sell(self, symbol: str, quantity: float, **ticket: Any) -> None:
        self.order(symbol=symbol, side="sell", orderType=ticket.pop("orderType", "market"), quantity=quantity, **ticket)

    @property
    def cash(self) -> float:
        return float(self.client.account["cash"]) if self.client.account else 0.0

    def position(self, symbol: str) -> float:
        held = self.client.positions.get(symbol)
        return float(held["quantity"]) if held else 0.0


OnBar = Callable[[Bar, Broker], Awaitable[None] | None]


@dataclass
class BacktestResult:
    simulator_id: str
    bars: int
    placed: list[dict[str, Any]] = field(default_factory=list)  # the orders placed, as `order_placed` gave them
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"ticket", "code", "message"}
    report: dict[str, Any] = field(default_factory=dict)


def _epoch_ms(value: str | int | None) -> int | None:
    """An epoch ms, or an ISO date or time (UTC unless it says otherwise)."""
    if value is None or isinstance(value, int):
        return value
    moment = datetime.fromisoformat(value)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def load_strategy(path: str | Path) -> OnBar:
    """The `on_bar` of a strategy file."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} is not a Python file")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on_bar = getattr(module, "on_bar", None)
    if not callable(on_bar):
        raise ValueError(f"{path} defines no on_bar(bar, broker)")
    return on_bar  # type: ignore[no-any-return]


async def backtest(
    client: Client,
    on_bar: OnBar,
    *,
    dataset_id: str,
    symbols: list[str] | None = None,
    start: str | int | None = None,
    end: str | int | None = None,
    profile: str = "realistic",
    seed: int = 0,
    speed: float | str = "max",
    reset: bool = True,
    benchmark: str | None = None,
) -> BacktestResult:
    """Run `on_bar` over the replay of `dataset_id` (its `symbols`, from `start` to `end`) in lock-step, on
    a connected client; with `reset`, the account is reset first (so two runs start alike). Returns what
    was placed and refused, and the run's report. The simulator is stopped at the end."""
    if reset:
        await client.request("reset_account")
    market: dict[str, Any] = {
        "source": "replay",
        "datasetId": dataset_id,
        "seed": seed,
        "speed": speed,
        "paused": False,
        "lockstep": True,
    }
    if symbols:
        market["symbols"] = symbols
    for name, value in (("start", _epoch_ms(start)), ("end", _epoch_ms(end))):
        if value is not None:
            market[name] = value
    bars: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    removers = [
        client.on(kind, bars.put_nowait) for kind in ("exchange_data", "clock_update", "simulator_status_update")
    ]
    try:
        # Every bar, unconflated: the clock waits for this client's acknowledgements, not the stream's window.
        await client.request("subscribe_market", flowControl=False)
        started = await client.request("start_simulator", profile=profile, market=market)
        result = BacktestResult(simulator_id=started["simulatorId"], bars=0)
        try:
            await _play(client, on_bar, bars, result)
        finally:
            await _stop(client, result.simulator_id)
    finally:
        for remove in removers:
            remove()
    result.report = await client.report(result.simulator_id, benchmark=benchmark)
    return result


async def _play(client: Client, on_bar: OnBar, queue: asyncio.Queue[dict[str, Any]], result: BacktestResult) -> None:
    broker = Broker(client)
    last_seq = 0
    finished_bar: int | None = None  # the replay's last bar (0-based), once the clock said it was shown
    while finished_bar is None or last_seq - 1 < finished_bar:
        try:
            message = await asyncio.wait_for(queue.get(), REACK_AFTER_S)
        except TimeoutError:
            if last_seq:
                await client.acknowledge(last_seq)
            continue
        kind = message["type"]
        if kind == "simulator_status_update" and message["simulatorId"] == result.simulator_id:
            if message["simulatorStatus"] in ("stopped", "error"):
                raise RuntimeError(f"the replay ended early: {message.get('reason')}")
        elif kind == "clock_update" and message["simulatorId"] == result.simulator_id:
            if message["clock"]["finished"]:
                finished_bar = int(message["clock"]["bar"])
        elif kind == "exchange_data":
            seq = int(message["seq"])
            if seq > last_seq:
                broker.orders = []
                outcome = on_bar(_bar_of(message), broker)
                if inspect.isawaitable(outcome):
                    await outcome
                await _place(client, broker.orders, result)
                last_seq = seq
                result.bars += 1
            await client.acknowledge(seq)


async def trade_live(
    client: Client,
    on_bar: OnBar,
    *,
    seconds: float,
    on_placed: Callable[[dict[str, Any]], None] | None = None,
    on_refused: Callable[[dict[str, Any]], None] | None = None,
) -> BacktestResult:
    """Run `on_bar` on every tick of the running simulator's market for `seconds` (no lock-step: a tick
    that comes while the strategy's orders are being placed waits its turn, in order)."""
    simulator_id = client.session["simulatorId"] if client.session else None
    result = BacktestResult(simulator_id=str(simulator_id or ""), bars=0)
    broker = Broker(client)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    ticks = client.messages("exchange_data")
    try:
        while loop.time() < deadline:
            try:
                tick = await asyncio.wait_for(anext(ticks), deadline - loop.time())
            except TimeoutError:
                break
            broker.orders = []
            bar = _bar_of(tick)
            outcome = on_bar(bar, broker)
            if inspect.isawaitable(outcome):
                await outcome
            placed, refused = len(result.placed), len(result.refused)
            await _place(client, broker.orders, result)
            for order in result.placed[placed:]:
                if on_placed:
                    on_placed(order)
            for refusal in result.refused[refused:]:
                if on_refused:
                    on_refused(refusal)
            result.bars += 1
    finally:
        await ticks.aclose()
    return result


def _bar_of(message: dict[str, Any]) -> Bar:
    return Bar(
        seq=int(message["seq"]),
        time=int(message["timestamp"]),
        prices={symbol: float(quote["price"]) for symbol, quote in message["symbols"].items()},
        quotes=message["symbols"],
    )


async def _stop(client: Client, simulator_id: str) -> None:
    """Stop the replay and wait until it is stopped (the account may be reset only then)."""
    stopped = asyncio.get_running_loop().create_future()

    def on_status(message: dict[str, Any]) -> None:
        ended = message["simulatorStatus"] in ("stopped", "error")
        if message["simulatorId"] == simulator_id and ended and not stopped.done():
            stopped.set_result(None)

    remove = client.on("simulator_status_update", on_status)
    try:
        with contextlib.suppress(ProtocolError):  # already stopped (simulator_not_running)
            await client.request("stop_simulator")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped, STOP_WAIT_S)
    finally:
        remove()


async def _place(client: Client, tickets: list[dict[str, Any]], result: BacktestResult) -> None:
    """Each order in turn; one refused for the message rate is sent again once the rate allows (the
    clock waits meanwhile, so the backtest's fills do not depend on it)."""
    for ticket in tickets:
        for attempt in range(RATE_RETRIES + 1):
            try:
                placed = await client.request("place_order", **ticket)
                result.placed.append(placed["order"])
                break
            except ProtocolError as refusal:
                if refusal.code != "rate_limited" or attempt == RATE_RETRIES:
                    result.refused.append({"ticket": ticket, "code": refusal.code, "message": refusal.message})
                    break
                await asyncio.sleep(RATE_RETRY_S * (attempt + 1))
