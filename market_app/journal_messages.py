"""Bodies of the account's journal and figures in the REST API (docs/protocol.md §4c). Times are
epoch milliseconds here and ISO-8601 UTC in the CSV exports; amounts are numbers here and exact
decimals in the CSV, the same values."""

from __future__ import annotations

from pydantic import BaseModel

from market_app.messages import OrderSideValue, OrderStatusValue, OrderTypeValue
from sessions_app.realtime import EpochMs, Omittable


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
