"""Bodies only the market REST API uses (the rest are shared with the socket, in messages.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from market_app.messages import CandleIntervalValue, OrderSideValue, Symbol
from sessions_app.realtime import EpochMs


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
