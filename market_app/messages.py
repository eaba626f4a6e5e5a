"""Market data and order messages (protocol section "Market Data", extended with paper
trading). Declared once; the handlers, the REST API, the schema export and the tests
import them. `exchange_data` and `exchange_data_status` keep the spec's fields and add
a few (marked below); the spec's shape is a subset of ours."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, StringConstraints, model_serializer

from sessions_app.realtime.message_base import (
    WHOLE,
    ClientMessage,
    DeviceId,
    EpochMs,
    InputModel,
    Omittable,
    RequestId,
    ServerMessage,
    StreamMessage,
)
from simulator_app.messages import ClockView, MarketView

Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")]
ClientOrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
OrderId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{32,36}$")]
OrderSideValue = Literal["buy", "sell"]
OrderTypeValue = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForceValue = Literal["gtc", "day", "ioc", "fok"]
OrderClassValue = Literal["simple", "bracket", "oco"]
MAX_AMOUNT = 1_000_000_000  # a quantity's or a price's largest value (order_specs checks the decimals)
Price = Annotated[float, Field(gt=0, le=MAX_AMOUNT)]
OrderStatusValue = Literal["new", "partially_filled", "filled", "canceled", "rejected"]
PriceSize = Annotated[list[float], Field(min_length=2, max_length=2)]  # [price, size]
CandleIntervalValue = Literal["1s", "1m", "5m"]
MAX_DEPTH = 50
TRADES_KEPT = 50  # a symbol's trades in one `exchange_data` at most (and in a snapshot of them)
SnapshotReason = Literal["simulator_started", "connected", "reconnected", "orders_changed", "request", "resync"]


# --- Parts -------------------------------------------------------------------


class SymbolQuote(BaseModel):
    """The spec's per-symbol entry: last price, change since the feed's reference price, volume of the tick;
    and (additions) the top of the book of the simulator's realism profile, a side absent when empty."""

    price: float
    change: float
    volume: int
    bid: Omittable[float] = None
    ask: Omittable[float] = None
    bidSize: Omittable[float] = None
    askSize: Omittable[float] = None

    @model_serializer(mode="wrap")
    def _omit_absent_top(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        for name in ("bid", "ask", "bidSize", "askSize"):
            if data.get(name, 0) is None:
                del data[name]
        return data


class BookDepth(BaseModel):
    """The first levels of a symbol's book, best first: `[price, size]` pairs."""

    bids: list[PriceSize]
    asks: list[PriceSize]


class CandleView(BaseModel):
    """One OHLCV bar: `start` is when it opens (epoch ms, a multiple of the interval)."""

    interval: CandleIntervalValue
    start: EpochMs
    open: float
    high: float
    low: float
    close: float
    volume: int


SPEC_ORDER_FIELDS = frozenset(
    {
        "orderId",
        "status",
        "filledQty",
        "symbol",
        "side",
        "orderType",
        "quantity",
        "limitPrice",
        "averagePrice",
        "clientOrderId",
        "reason",
        "createdAt",
        "updatedAt",
    }
)


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
    # Additions of the exchange's order types (docs/protocol.md §4b); a spec client ignores them.
    timeInForce: TimeInForceValue = "gtc"
    orderClass: OrderClassValue = "simple"
    stopPrice: float | None = None
    trailAmount: float | None = None
    trailPercent: float | None = None
    trailingStopPrice: float | None = Field(default=None, description="Where a trailing stop stands now.")
    triggered: bool = Field(default=False, description="A stop that triggered and trades as market or limit.")
    queueAhead: float | None = Field(default=None, description="Size ahead of a resting limit order.")
    takeProfitPrice: float | None = None
    stopLossPrice: float | None = None
    stopLossLimitPrice: float | None = None
    parentOrderId: str | None = Field(default=None, description="A bracket exit's entry order.")
    ocoGroup: str | None = Field(default=None, description="Orders of one group cancel each other.")
    fee: float = Field(default=0.0, description="Commission charged on its fills so far.")
    liquidation: bool = Field(
        default=False, description="Placed by a margin call's liquidation (docs/protocol.md §4f)."
    )

    @model_serializer(mode="wrap")
    def _without_unset_additions(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An addition at its default is left out, so a plain order reads exactly as the spec's.
        data: dict[str, Any] = handler(self)
        for name in ORDER_ADDITIONS:
            if name in data and data[name] == UserOrder.model_fields[name].default:
                del data[name]
        return data


ORDER_ADDITIONS = tuple(name for name in UserOrder.model_fields if name not in SPEC_ORDER_FIELDS)


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
    feesPaid: float = Field(default=0.0, description="Commission paid since the account opened (an addition).")
    accountId: int | None = Field(
        default=None, description="Which of the user's accounts this is (an addition; null before the first)."
    )
    name: str | None = Field(default=None, description="The account's name (an addition).")
    accountType: Literal["cash", "margin"] = Field(default="cash", description="An addition (docs/protocol.md §4f).")
    buyingPower: float | None = Field(
        default=None,
        description="An addition: the value of new positions an order may open (a cash account: its free cash).",
    )
    initialMargin: float | None = Field(
        default=None, description="A margin account's: what its positions and open orders hold (an addition)."
    )
    maintenanceMargin: float | None = Field(
        default=None, description="A margin account's: what its positions must keep (an addition)."
    )
    marginExcess: float | None = Field(
        default=None, description="A margin account's equity above its maintenance margin (an addition)."
    )


class TakeProfit(InputModel):
    """A bracket's (or an OCO pair's) limit exit."""

    limitPrice: Price


class StopLoss(InputModel):
    """A bracket's (or an OCO pair's) stop exit: a stop, or a stop-limit with `limitPrice`."""

    stopPrice: Price
    limitPrice: Omittable[Price] = None


class OrderTicket(InputModel):
    """What a new order says; the socket's `place_order` and POST /api/market/orders/ share it.

    Everything after `clientOrderId` is an addition (docs/protocol.md §4b), optional: a spec
    client's ticket is a `gtc` market or limit order of class `simple`.
    """

    symbol: Symbol
    side: OrderSideValue
    orderType: OrderTypeValue
    quantity: float = Field(gt=0, le=MAX_AMOUNT)
    limitPrice: Omittable[Price] = None
    clientOrderId: Omittable[ClientOrderId] = None
    timeInForce: Omittable[TimeInForceValue] = None
    stopPrice: Omittable[Price] = None
    trailAmount: Omittable[Price] = None
    trailPercent: Omittable[Annotated[float, Field(gt=0, lt=100)]] = None
    orderClass: Omittable[OrderClassValue] = None
    takeProfit: Omittable[TakeProfit] = None
    stopLoss: Omittable[StopLoss] = None


class OrderAmendment(InputModel):
    """What `replace_order` (and POST /api/market/orders/{orderId}/replace/) may change; at least one."""

    quantity: Omittable[Annotated[float, Field(gt=0, le=MAX_AMOUNT)]] = None
    limitPrice: Omittable[Price] = None
    stopPrice: Omittable[Price] = None
    trailAmount: Omittable[Price] = None
    trailPercent: Omittable[Annotated[float, Field(gt=0, lt=100)]] = None


# --- Server to client -------------------------------------------------------


class BookChange(BaseModel):
    """One symbol's book in `exchange_data.books` or a `book` reply: all of it (`snapshot`), or the levels
    that changed since the book of `prevSeq` (`update`: `[price, size]` sets a level, `[price, 0]`
    removes it). `checksum` is of the book after it (docs/protocol.md, "Books as snapshot and deltas")."""

    action: Literal["snapshot", "update"]
    seq: int = Field(description="The book's version: the tick it last changed at.")
    prevSeq: int | None = Field(description="The `seq` of the book an update applies to; null in a snapshot.")
    bids: list[PriceSize]
    asks: list[PriceSize]
    checksum: Annotated[int, Field(ge=0, le=2**32 - 1)]


class TradePrint(BaseModel):
    """One trade of the feed: its price, size, the side that took liquidity (`buy`: at or above the
    last price, an uptick), and when (the tick's time)."""

    price: float
    size: float
    side: OrderSideValue
    time: EpochMs


class ExchangeData(ServerMessage):
    """Live prices, pushed on every tick while the user's simulator runs (only the subscribed symbols).

    A slow connection gets the newest price of each symbol instead of every tick; `seq` (an addition)
    is the feed's tick number, so a gap shows what was conflated. Each quote adds the top of book;
    `depth`, `candles`, `books` and `trades` (additions) are there only when `subscribe_market` asked.
    """

    type: Literal["exchange_data"] = "exchange_data"
    timestamp: EpochMs
    symbols: dict[str, SymbolQuote]
    seq: int
    # Additions, only for a connection that asked for them in `subscribe_market`:
    depth: Omittable[dict[str, BookDepth]] = None  # `depth` levels per side of each symbol's book
    candles: Omittable[dict[str, dict[CandleIntervalValue, CandleView]]] = None  # the open bar per interval
    books: Omittable[dict[str, BookChange]] = Field(
        default=None, description="With `bookDeltas`: each changed book, as a snapshot or the levels that changed."
    )
    trades: Omittable[dict[str, list[TradePrint]]] = Field(
        default=None, description="With `trades`: each symbol's trades since the last `exchange_data`, oldest first."
    )
    tradesSnapshot: Omittable[bool] = Field(
        default=None,
        description="True when `trades` holds the most recent trades rather than those since the last tick: "
        "the first tick after subscribing, or one after a stretch the client fell behind.",
    )

    omit_when_none = frozenset({"depth", "candles", "books", "trades", "tradesSnapshot"})


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
    profile: Omittable[str] = Field(default=None, description="The running simulator's realism profile.")
    market: Omittable[MarketView] = Field(
        default=None,
        description="The live simulator's own market (a replay or synthetic walk): then `symbols` are its.",
    )
    clock: Omittable[ClockView] = Field(
        default=None, description="Where that market's clock stood at its last checkpoint."
    )

    omit_when_none = StreamMessage.omit_when_none | {"requestId", "profile", "market", "clock"}


class MarketSubscription(ServerMessage):
    """Reply to `subscribe_market`: the symbols `exchange_data` now carries (every listed one when all)."""

    type: Literal["market_subscription"] = "market_subscription"
    requestId: str
    success: bool
    symbols: list[str]
    depth: Omittable[int] = None  # the book levels per side `exchange_data` now carries (absent: none)
    candles: Omittable[list[CandleIntervalValue]] = None  # the intervals of its open candles (absent: none)
    # With flow control: the `exchange_data` the server sends past the last `market_ack` at most.
    window: Omittable[int] = None
    bookDeltas: Omittable[bool] = None  # true: the `depth` levels come as `exchange_data.books`
    trades: Omittable[bool] = None  # true: `exchange_data` carries the trades

    omit_when_none = frozenset({"depth", "candles", "window", "bookDeltas", "trades"})


class BookReply(ServerMessage):
    """Addition: the reply to `request_book`, a snapshot of each book asked for as of tick `seq`."""

    type: Literal["book"] = "book"
    seq: int
    timestamp: EpochMs
    books: dict[str, BookChange]
    requestId: str


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


class OrderReplaced(ServerMessage):
    """Reply to `replace_order`: the amended order (it takes effect after the entry latency)."""

    type: Literal["order_replaced"] = "order_replaced"
    requestId: str
    success: bool
    order: UserOrder


# --- Client to server -------------------------------------------------------


class SubscribeMarket(ClientMessage):
    """Narrow `exchange_data` to these symbols; an empty list or null means every symbol. Optionally
    (additions) ask for `depth` book levels per side and the open bars of the `candles` intervals."""

    type: Literal["subscribe_market"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    symbols: list[Symbol] | None = Field(default=None, max_length=200)
    # Additions: the book's first `depth` levels per side in each `exchange_data` (absent or 0: none),
    # and the open candle of each listed interval (absent or empty: none).
    depth: Omittable[Annotated[int, Field(ge=0, le=MAX_DEPTH), WHOLE]] = None
    candles: Omittable[list[CandleIntervalValue]] = Field(default=None, max_length=3)
    # Addition: flow control. The client acknowledges the ticks it applied (`market_ack`); past
    # `window` unacknowledged ones (the reply says how many) the server merges the newest per
    # symbol until it does. Absent or false: every tick is sent.
    flowControl: Omittable[bool] = None
    # Additions: with `depth`, the book as `books` in each `exchange_data` (a snapshot, then only the
    # changed levels, each checked by a checksum) instead of `depth`; and the time and sales (`trades`).
    bookDeltas: Omittable[bool] = None
    trades: Omittable[bool] = None

    reply = MarketSubscription


class RequestBook(ClientMessage):
    """Addition (after `subscribe_market` with `depth` and `bookDeltas`): a fresh snapshot of the
    subscribed books, or of the listed ones, for a client that missed an update (`prevSeq` is not the
    `seq` of its book) or whose checksum does not match."""

    type: Literal["request_book"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    symbols: list[Symbol] | None = Field(default=None, max_length=200)

    reply = BookReply


class MarketAck(ClientMessage):
    """Addition (flow control, after `subscribe_market` with `flowControl`): every `exchange_data`
    up to `seq` was applied. For a replay in lock-step it also lets the clock show the bar after
    `seq`. No reply; otherwise it changes nothing. Counted in a budget of its own (WS_ACK_RATE_PER_S)."""

    type: Literal["market_ack"]
    deviceId: DeviceId
    seq: Annotated[int, Field(ge=0), WHOLE]

    acknowledgement = True


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


class ReplaceOrder(ClientMessage, OrderAmendment):
    """Amend an open order's quantity or prices (an addition; docs/protocol.md §4b)."""

    type: Literal["replace_order"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    orderId: OrderId

    reply = OrderReplaced


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    SubscribeMarket,
    MarketAck,
    RequestBook,
    RequestExchangeData,
    PlaceOrder,
    CancelOrder,
    ReplaceOrder,
)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    ExchangeData,
    ExchangeDataStatus,
    MarketSubscription,
    BookReply,
    OrderPlaced,
    OrderCanceled,
    OrderReplaced,
)


# --- Account reset (docs/protocol.md §4c) -------------------------------------------------------

AccountId = Annotated[int, Field(ge=1, le=2**63 - 1), WHOLE]


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
    """Set the paper account back to its starting cash: needs its simulator stopped (`account_in_use`)."""

    type: Literal["reset_account"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    accountId: Omittable[AccountId] = Field(
        default=None, description="One of your accounts (an addition); default the current one."
    )

    reply = AccountResetDone


CLIENT_MESSAGES += (ResetAccount,)
SERVER_MESSAGES += (AccountResetDone,)


# --- Risk limits (docs/protocol.md §4c) ----------------------------------------------------------------


# A limit's amount: a cent at least (the account keeps eight decimals: a smaller one would read back as 0).
LimitAmount = Annotated[float, Field(ge=0.01, le=MAX_AMOUNT)]


class RiskLimits(InputModel):
    """An account's risk limits, each left out or null for none (market_app.risk says how each is counted)."""

    maxOrderValue: Omittable[LimitAmount] = Field(default=None, description="An order's quantity x its price.")
    maxPositionValue: Omittable[LimitAmount] = Field(
        default=None, description="A symbol's position at the last price and its open buys, with a new buy."
    )
    maxOpenOrders: Omittable[Annotated[int, Field(ge=1, le=10_000), WHOLE]] = None
    maxLeverage: Omittable[Annotated[float, Field(ge=0.01, le=100)]] = Field(
        default=None, description="Every position at the last price and the open buys, over the equity."
    )
    dailyLossLimit: Omittable[LimitAmount] = Field(
        default=None,
        description="A market day's fall of equity below its first sample that cancels the open orders and "
        "refuses new ones until the next day.",
    )


class RiskLimitsView(BaseModel):
    """The risk limits the account's user set, and the operator's caps: an order is held to the lower."""

    limits: RiskLimits
    caps: RiskLimits


class RiskLimitsSet(ServerMessage):
    """Reply to `set_risk_limits`."""

    type: Literal["risk_limits_set"] = "risk_limits_set"
    requestId: str
    success: bool
    riskLimits: RiskLimitsView


class SetRiskLimits(ClientMessage):
    """Set every risk limit of the account at once (one left out or null is none), each at most the
    operator's cap (`limit_above_cap`: nothing changes)."""

    type: Literal["set_risk_limits"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    limits: RiskLimits
    accountId: Omittable[AccountId] = Field(
        default=None, description="One of your open accounts (an addition); default the current one."
    )

    reply = RiskLimitsSet


CLIENT_MESSAGES += (SetRiskLimits,)
SERVER_MESSAGES += (RiskLimitsSet,)


# --- Accounts (docs/protocol.md §4f) ------------------------------------------------------------------

# Trimmed; so it must hold something besides white space, which the schema states too (`\S`).
AccountName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"\S")]
ProfileValue = Literal["ideal", "realistic", "harsh"]
CommissionAmount = Annotated[float, Field(ge=0, le=MAX_AMOUNT)]


class TradingAccount(BaseModel):
    """One of the user's accounts: its own cash, positions, orders, journal and report."""

    accountId: int
    name: str
    accountType: Literal["cash", "margin"] = Field(
        description="`cash`: long only, paid in full; `margin`: short selling and buying power (docs/protocol.md §4f)."
    )
    isDefault: bool = Field(description="A simulator started without an `accountId` trades it.")
    isCurrent: bool = Field(
        description="The account of the simulator running or last started: what snapshots and REST show "
        "without an `accountId`."
    )
    startingCash: float
    cash: float
    feesPaid: float
    profile: ProfileValue | None = Field(
        description="The realism a simulator of the account starts with; null: the service's default."
    )
    commissionPerShare: float | None = Field(description="null: the service's default (MARKET_COMMISSION_PER_SHARE).")
    commissionMinimum: float | None = Field(description="null: the service's default (MARKET_COMMISSION_MINIMUM).")
    commissionBps: float | None = Field(description="null: the service's default (MARKET_COMMISSION_BPS).")
    createdAt: EpochMs
    closedAt: EpochMs | None = Field(description="When it was closed; its history stays readable.")


class AccountSettings(InputModel):
    """What an account's owner may change (each left out: unchanged)."""

    name: Omittable[AccountName] = None
    default: Omittable[Literal[True]] = Field(
        default=None, description="Make it the default account (the one before stops being it)."
    )
    profile: Omittable[ProfileValue] = Field(default=None, description="The realism its simulators start with.")
    commissionPerShare: Omittable[CommissionAmount] = None
    commissionMinimum: Omittable[CommissionAmount] = None
    commissionBps: Omittable[Annotated[float, Field(ge=0, le=10_000)]] = None


class AccountOpening(AccountSettings):
    """A new account: its name, and its starting cash (default MARKET_STARTING_CASH, at most
    MARKET_MAX_STARTING_CASH: `starting_cash_above_cap`)."""

    name: AccountName
    startingCash: Omittable[Annotated[float, Field(gt=0, le=MAX_AMOUNT)]] = None
    accountType: Omittable[Literal["cash", "margin"]] = Field(
        default=None, description="Default `cash`; fixed once opened."
    )


class AccountList(ServerMessage):
    """Reply to `list_accounts`."""

    type: Literal["accounts"] = "accounts"
    requestId: str
    success: bool
    accounts: list[TradingAccount]


class ListAccounts(ClientMessage):
    """The user's accounts, open ones (and closed ones with `closed`), oldest first."""

    type: Literal["list_accounts"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    closed: Omittable[bool] = Field(default=None, description="Closed accounts too.")

    reply = AccountList


class AccountChanged(ServerMessage):
    """Reply to `open_account`, `update_account` and `close_account`: the account as it now is."""

    type: Literal["account_changed"] = "account_changed"
    requestId: str
    success: bool
    account: TradingAccount


class OpenAccount(ClientMessage):
    """Open another account (at most MARKET_ACCOUNTS_PER_USER open at once: `account_limit`)."""

    type: Literal["open_account"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    account: AccountOpening

    reply = AccountChanged


class UpdateAccount(ClientMessage):
    """Rename an account, make it the default, or change its profile or commission schedule."""

    type: Literal["update_account"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    accountId: AccountId
    settings: AccountSettings

    reply = AccountChanged


class CloseAccount(ClientMessage):
    """Close an account that is not the default (`default_account`) nor trading (`account_in_use`); its
    history stays readable. Closing the current account makes the default one current."""

    type: Literal["close_account"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    accountId: AccountId

    reply = AccountChanged


CLIENT_MESSAGES += (ListAccounts, OpenAccount, UpdateAccount, CloseAccount)
SERVER_MESSAGES += (AccountList, AccountChanged)


class MarginCallView(BaseModel):
    """A margin call: the account's equity fell below its maintenance margin (docs/protocol.md §4f)."""

    callId: int
    status: Literal["open", "met", "liquidated"]
    issuedAt: EpochMs = Field(description="Market time, as the feed or the bars count it.")
    dueAt: EpochMs = Field(description="Not met by then (market time): the positions are liquidated.")
    closedAt: EpochMs | None
    equity: float = Field(description="When issued.")
    maintenanceMargin: float = Field(description="When issued.")


class MarginCallUpdate(StreamMessage):
    """Pushed (numbered) to the user's connections when a margin call of their account is issued, met, or
    ends in liquidation (the liquidation's orders carry `liquidation: true`)."""

    type: Literal["margin_call"] = "margin_call"
    accountId: int
    call: MarginCallView
    timestamp: EpochMs


SERVER_MESSAGES += (MarginCallUpdate,)
