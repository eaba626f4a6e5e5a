"""Market data and order messages (protocol section "Market Data", extended with paper
trading). Declared once; the handlers, the REST API, the schema export and the tests
import them. `exchange_data` and `exchange_data_status` keep the spec's fields and add
a few (marked below); the spec's shape is a subset of ours."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sessions_app.realtime import ClientMessage, DeviceId, EpochMs, Omittable, RequestId, ServerMessage, StreamMessage

Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")]
ClientOrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
OrderId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{32,36}$")]
OrderSideValue = Literal["buy", "sell"]
OrderTypeValue = Literal["market", "limit"]
OrderStatusValue = Literal["new", "partially_filled", "filled", "canceled", "rejected"]
SnapshotReason = Literal["simulator_started", "connected", "reconnected", "orders_changed", "request", "resync"]


# --- Parts -------------------------------------------------------------------


class SymbolQuote(BaseModel):
    """The spec's per-symbol entry: last price, change since the feed's reference price, volume of the tick."""

    price: float
    change: float
    volume: int


class UserOrder(BaseModel):
    """The spec's `{orderId, status, filledQty}`, plus what a ticket needs to show the order."""

    orderId: str
    status: OrderStatusValue
    filledQty: float
    symbol: str
    side: OrderSideValue
    orderType: OrderTypeValue
    quantity: float
    limitPrice: float | None
    averagePrice: float | None
    clientOrderId: str | None
    reason: str
    createdAt: EpochMs
    updatedAt: EpochMs


class UserPosition(BaseModel):
    """The spec's `{symbol, quantity, value}` (value at the last price), plus prices and profit."""

    symbol: str
    quantity: float
    value: float
    averagePrice: float
    lastPrice: float
    realizedPnl: float
    unrealizedPnl: float


class AccountSummary(BaseModel):
    cash: float
    startingCash: float
    positionsValue: float
    equity: float
    reservedCash: float


class OrderTicket(BaseModel):
    """What a new order says; the socket's `place_order` and POST /api/market/orders/ share it."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    symbol: Symbol
    side: OrderSideValue
    orderType: OrderTypeValue
    quantity: float = Field(gt=0, le=1_000_000_000)
    limitPrice: Omittable[Annotated[float, Field(gt=0)]] = None
    clientOrderId: Omittable[ClientOrderId] = None


# --- Server to client -------------------------------------------------------


class ExchangeData(ServerMessage):
    """Live prices, pushed on every tick while the user's simulator runs (only the subscribed symbols).

    A slow connection gets the newest price of each symbol instead of every tick; `seq` (an addition)
    is the feed's tick number, so a gap shows what was conflated.
    """

    type: Literal["exchange_data"] = "exchange_data"
    timestamp: EpochMs
    symbols: dict[str, SymbolQuote]
    seq: int


class ExchangeDataStatus(StreamMessage):
    """A full snapshot: every price, the user's orders and positions, and (an addition) the account.

    Sent when the simulator starts, on connecting and on `reconnect` while it runs, whenever the
    user's orders or positions change (to every connection of the user), and in reply to
    `request_exchange_data` (then with its `requestId`). `userOrders` holds the open orders and the
    50 most recent others; `reason` says why it was sent.
    """

    type: Literal["exchange_data_status"] = "exchange_data_status"
    timestamp: EpochMs
    symbols: dict[str, SymbolQuote]
    userOrders: dict[str, UserOrder]
    userPositions: dict[str, UserPosition]
    account: AccountSummary
    seq: int
    reason: SnapshotReason
    requestId: Omittable[str] = None

    omit_when_none = StreamMessage.omit_when_none | {"requestId"}


class MarketSubscription(ServerMessage):
    """Reply to `subscribe_market`: the symbols `exchange_data` now carries (every listed one when all)."""

    type: Literal["market_subscription"] = "market_subscription"
    requestId: str
    success: bool
    symbols: list[str]


class OrderPlaced(ServerMessage):
    type: Literal["order_placed"] = "order_placed"
    requestId: str
    success: bool
    order: UserOrder


class OrderCanceled(ServerMessage):
    type: Literal["order_canceled"] = "order_canceled"
    requestId: str
    success: bool
    order: UserOrder


# --- Client to server -------------------------------------------------------


class SubscribeMarket(ClientMessage):
    """Narrow `exchange_data` to these symbols; an empty list or null means every symbol."""

    type: Literal["subscribe_market"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    symbols: list[Symbol] | None = Field(default=None, max_length=200)

    reply = MarketSubscription


class RequestExchangeData(ClientMessage):
    type: Literal["request_exchange_data"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = ExchangeDataStatus


class PlaceOrder(ClientMessage, OrderTicket):
    type: Literal["place_order"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = OrderPlaced


class CancelOrder(ClientMessage):
    type: Literal["cancel_order"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    orderId: OrderId

    reply = OrderCanceled


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (SubscribeMarket, RequestExchangeData, PlaceOrder, CancelOrder)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    ExchangeData,
    ExchangeDataStatus,
    MarketSubscription,
    OrderPlaced,
    OrderCanceled,
)


# --- Account reset (docs/protocol.md §4c) -------------------------------------------------------


class AccountResetView(BaseModel):
    """A reset of the paper account: when, the figures it had just before, and what it cleared."""

    resetId: int
    at: EpochMs
    epoch: int  # the epoch the reset began (the account's first is 0; each reset adds one)
    byOperator: bool
    startingCash: float
    cashBefore: float
    positionsValueBefore: float
    equityBefore: float
    realizedPnlBefore: float
    ordersCanceled: int
    positionsCleared: int


class AccountResetDone(ServerMessage):
    """Reply to `reset_account`. The user's connections also get a fresh `exchange_data_status`."""

    type: Literal["account_reset"] = "account_reset"
    requestId: str
    success: bool
    reset: AccountResetView


class ResetAccount(ClientMessage):
    """Set the paper account back to its starting cash: needs the simulator stopped (`account_in_use`)."""

    type: Literal["reset_account"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = AccountResetDone


CLIENT_MESSAGES += (ResetAccount,)
SERVER_MESSAGES += (AccountResetDone,)
