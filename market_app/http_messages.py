"""Bodies only the market REST API uses (the rest are shared with the socket, in messages.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from market_app.messages import CandleIntervalValue, OrderSideValue, OrderStatusValue, OrderTypeValue, Symbol
from sessions_app.api.parsing import Digits, EpochMsParameter, TimeParameter
from sessions_app.realtime.message_base import EpochMs, Omittable
from simulator_app.messages import MarketView


class InstrumentView(BaseModel):
    symbol: str
    name: str
    tickSize: float
    price: float
    change: float
    volume: int


class FillView(BaseModel):
    fillId: str
    orderId: str
    symbol: str
    side: OrderSideValue
    quantity: float
    price: float
    tickSeq: int
    createdAt: EpochMs
    fee: float = Field(default=0.0, description="The commission charged on this fill (an addition).")


CANDLE_LIMIT = 1_000
MAX_EQUITY_POINTS = 5_000
# Query strings: unknown names are ignored, as a browser's cache-busting `?_=` should be.
QUERY = ConfigDict(extra="ignore", frozen=True)


class CandleQuery(BaseModel):
    """The query of GET /api/market/candles/: bars opening in [from, to) (epoch ms), the newest `limit`.
    A window with `to` at or before `from` is empty."""

    model_config = QUERY
    symbol: Symbol = Field(description="a listed symbol")
    interval: CandleIntervalValue = Field(description="the bars' length")
    start: Omittable[EpochMsParameter] = Field(default=None, alias="from", description="bars opening at or after it")
    end: Omittable[EpochMsParameter] = Field(default=None, alias="to", description="bars opening before it")
    limit: Annotated[int, Field(ge=1, le=CANDLE_LIMIT), Digits] = Field(
        default=500, description="the newest this many bars in the window"
    )


class OrderListQuery(BaseModel):
    """The query of GET /api/market/orders/"""

    model_config = QUERY
    status: Literal["open", "all"] = Field(default="all", description="`open`: new and partially filled orders")


# A UUID in a path, as the views parse it (one with its dashes).
UuidText = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        json_schema_extra={"format": "uuid"},
    ),
]


class OrderPath(BaseModel):
    """The path of /api/market/orders/{orderId}/...: an order's UUID, as UserOrder.orderId gives it."""

    model_config = ConfigDict(strict=True, frozen=True)
    orderId: UuidText


class AccountQuery(BaseModel):
    """Which of the user's accounts a request is about (docs/protocol.md §4f)."""

    model_config = QUERY
    accountId: Omittable[Annotated[int, Field(ge=1, le=2**63 - 1), Digits]] = Field(
        default=None,
        description="one of your accounts (GET /api/market/accounts/); default the current one "
        "(the account of the simulator running or last started)",
    )


class AccountListQuery(BaseModel):
    """The query of GET /api/market/accounts/"""

    model_config = QUERY
    closed: bool = Field(default=False, description="closed accounts too")


class AccountPath(BaseModel):
    """The path of /api/market/accounts/{accountId}/."""

    model_config = ConfigDict(strict=True, frozen=True)
    accountId: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$")] = Field(description="one of your accounts' id")


class ResetQuery(AccountQuery):
    """The query of GET /api/market/account/resets/: all resets, or those in [from, to) when either is given."""

    start: Omittable[TimeParameter] = Field(
        default=None, alias="from", description="start of the window, inclusive: epoch ms or an RFC 3339 date-time"
    )
    end: Omittable[TimeParameter] = Field(
        default=None, alias="to", description="end of the window, exclusive: epoch ms or an RFC 3339 date-time"
    )


class JournalQuery(AccountQuery):
    """The query of the journal's exports (docs/protocol.md §4c): the window [from, to), empty when `to` is
    at or before `from`, and the format."""

    start: Omittable[TimeParameter] = Field(
        default=None,
        alias="from",
        description="start of the window, inclusive: epoch ms or an RFC 3339 date-time; "
        "default the last reset before `to`",
    )
    end: Omittable[TimeParameter] = Field(
        default=None,
        alias="to",
        description="end of the window, exclusive: epoch ms or an RFC 3339 date-time; default now",
    )
    format: Omittable[Literal["json", "csv"]] = Field(
        default=None, description="`json` (the default) or `csv` (also chosen by `Accept: text/csv`)"
    )


class EquityQuery(JournalQuery):
    points: Annotated[int, Field(ge=2, le=MAX_EQUITY_POINTS), Digits] = Field(
        default=500, description="JSON only: at most this many samples, evenly spread"
    )


class JournalOrder(BaseModel):
    orderId: str
    createdAt: EpochMs
    updatedAt: EpochMs
    symbol: str
    side: OrderSideValue
    orderType: OrderTypeValue
    quantity: float
    limitPrice: Omittable[float] = None
    status: OrderStatusValue
    filledQty: float
    averagePrice: Omittable[float] = None
    clientOrderId: str
    reason: str
    epoch: int
    simulatorId: str | None = Field(default=None, description="The simulator it was placed on (an addition).")
    market: str = Field(
        default="shared", description="Where that simulator took its prices: `shared`, `replay` or `synthetic`."
    )
    liquidation: bool = Field(default=False, description="Placed by a margin call's liquidation (an addition).")


class JournalFill(BaseModel):
    fillId: str
    orderId: str
    createdAt: EpochMs
    tickSeq: int
    symbol: str
    side: OrderSideValue
    quantity: float
    price: float
    fee: float
    notional: float
    epoch: int
    marketAt: EpochMs | None = Field(
        default=None, description="In a replay or synthetic market: the time of the bar it traded on (an addition)."
    )


class EquityPoint(BaseModel):
    at: EpochMs
    tickSeq: int
    equity: float
    cash: float
    positionsValue: float
    epoch: int


class AccountPerformance(BaseModel):
    """The account's figures over [from, to); definitions in docs/protocol.md §4c."""

    start: Omittable[EpochMs] = None  # absent: from the account's first record
    end: EpochMs
    epoch: int
    resets: int
    orders: int
    fills: int
    realizedPnl: float
    unrealizedPnl: float
    fees: float
    netPnl: float
    roundTrips: int
    roundTripsWon: int
    winRate: Omittable[float] = None
    maxDrawdown: float
    maxDrawdownRatio: float
    equitySamples: int
    firstEquity: Omittable[float] = None
    lastEquity: Omittable[float] = None
    charges: float = Field(
        default=0.0, description="A margin account's borrow fees and margin interest in the window, in `netPnl`."
    )


class JournalCharge(BaseModel):
    """A margin account's daily accrual (docs/protocol.md §4f)."""

    chargeId: int
    at: EpochMs
    day: str = Field(description="The market day it accrued over.")
    kind: Literal["borrow_fee", "margin_interest"]
    amount: float
    details: dict[str, str] = Field(description="Borrow fees: each short's value charged on; interest: `borrowed`.")
    epoch: int


# --- Datasets of bars (docs/datasets.md) -------------------------------------------------------------

DATASET_NAME = r"^\S(.*\S)?$"  # no leading or trailing space


class DatasetUploadQuery(BaseModel):
    """The query of POST /api/market/datasets/ (the body is the CSV file itself)."""

    model_config = QUERY
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=DATASET_NAME)] = Field(
        description="the dataset's name, unique among yours"
    )


class DatasetPath(BaseModel):
    """The path of /api/market/datasets/{datasetId}/."""

    model_config = ConfigDict(strict=True, frozen=True)
    datasetId: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$")] = Field(description="a dataset's id")


class DatasetSymbol(BaseModel):
    symbol: str
    bars: int
    firstAt: EpochMs = Field(description="its first bar's time")
    lastAt: EpochMs = Field(description="its last bar's time")


class DatasetView(BaseModel):
    datasetId: str
    name: str
    mine: bool = Field(description="yours (else shared with every user by an operator)")
    shared: bool
    source: str = Field(description="where the bars come from, and their license")
    barCount: int
    firstAt: EpochMs
    lastAt: EpochMs
    createdAt: EpochMs
    symbols: list[DatasetSymbol]


# --- A replay run's report (market_app.run_report, docs/replay.md) ----------------------------------


class ReportPath(BaseModel):
    """The path of /api/market/simulators/{simulatorId}/report/."""

    model_config = ConfigDict(strict=True, frozen=True)
    simulatorId: UuidText = Field(description="one of your simulators (a replay)")


class ReportQuery(BaseModel):
    model_config = QUERY
    benchmark: Omittable[Symbol] = Field(
        default=None, description="The symbol held from the first bar to the last (default: the run's first)."
    )
    format: Omittable[Literal["json", "html"]] = Field(
        default=None, description="`json` (the default) or `html`: one self-contained page (no script, no CDN)."
    )


class ReportFigures(BaseModel):
    """Simple returns bar by bar, no risk-free rate, annualised with `periodsPerYear` (as empyrical does);
    a figure that cannot be computed (too few bars, no loss, no variance) is null."""

    startingCapital: float = Field(description="The account's cash when the run started.")
    endingEquity: float
    totalReturn: float
    cagr: float | None = Field(description="Compound annual growth rate.")
    volatility: float | None = Field(description="Annualised standard deviation of the returns.")
    sharpe: float | None
    sortino: float | None
    calmar: float | None = Field(description="CAGR over the maximum drawdown.")
    maxDrawdown: float = Field(description="The largest fall from a peak, as a fraction (0 to -1).")
    maxDrawdownBars: int = Field(description="How many bars the longest drawdown lasted (peak to recovery).")
    maxDrawdownDurationMs: int = Field(description="The same, in market time.")
    trades: int = Field(
        description="Round trips: a position from flat to flat (one still open counts, at the last price)."
    )
    winRate: float | None
    profitFactor: float | None = Field(description="Gross profit over gross loss.")
    expectancy: float | None = Field(description="The mean round trip's profit or loss, fees included.")
    averageWin: float | None
    averageLoss: float | None
    exposure: float = Field(description="The share of bars with a position held.")
    turnover: float = Field(description="Notional traded over the mean equity.")
    fees: float
    benchmark: str
    benchmarkReturn: float
    benchmarkCagr: float | None
    alpha: float | None = Field(description="Jensen's alpha against the benchmark, annualised.")
    beta: float | None
    periodsPerYear: float = Field(description="Bars a year: 252 for daily bars, trading time only below a day.")


class ReportSeries(BaseModel):
    """Bar by bar: the market time, the equity after the bar, the benchmark held with the same capital, the drawdown."""

    times: list[EpochMs]
    equity: list[float]
    benchmark: list[float]
    drawdown: list[float]


class MonthlyReturn(BaseModel):
    month: str = Field(description="YYYY-MM")
    value: float


class RunTrade(BaseModel):
    symbol: str
    openedAt: EpochMs
    closedAt: EpochMs
    pnl: float = Field(description="Profit or loss, fees included.")
    open: bool = Field(description="Still held at the run's last bar (counted at its price).")


class RunReport(BaseModel):
    simulatorId: str
    market: MarketView
    status: str
    bars: int = Field(description="Bars the run has shown so far.")
    start: EpochMs | None
    end: EpochMs | None
    figures: ReportFigures
    series: ReportSeries
    monthly: list[MonthlyReturn]
    trades: list[RunTrade]
