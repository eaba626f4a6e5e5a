"""Bodies only the market REST API uses (the rest are shared with the socket, in messages.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from market_app.messages import OrderSideValue
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
