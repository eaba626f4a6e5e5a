"""Bodies only the market REST API uses (the rest are shared with the socket, in messages.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from market_app.messages import CandleIntervalValue, OrderSideValue, OrderStatusValue, OrderTypeValue, Symbol
from sessions_app.realtime import EpochMs, Omittable


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


class CandleQuery(BaseModel):
    """The query of GET /api/market/candles/: bars opening in [from, to) (epoch ms), the newest `limit`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    symbol: Symbol
    interval: CandleIntervalValue
    start: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="from")
    end: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="to")
    limit: Annotated[int, Field(ge=1, le=CANDLE_LIMIT)] = 500


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
