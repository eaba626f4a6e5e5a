"""The market app's HTTP operations, for the OpenAPI document (sessions_app.openapi)."""

from market_app.errors import AccountCode, MarketCode
from market_app.http_messages import (
    AccountPerformance,
    EquityPoint,
    FillView,
    InstrumentView,
    JournalFill,
    JournalOrder,
)
from market_app.messages import (
    AccountResetView,
    AccountSummary,
    CandleView,
    OrderAmendment,
    OrderTicket,
    UserOrder,
    UserPosition,
)
from sessions_app.errors import HttpCode
from sessions_app.openapi import Operation
from simulator_app.errors import SimulatorCode

OPERATIONS = [
    Operation("GET", "/api/market/instruments/", "Listed instruments with their last price", InstrumentView, many=True),
    Operation(
        "GET",
        "/api/market/orders/",
        "Your orders, newest first (at most 500)",
        UserOrder,
        many=True,
        query={"status": "`open` or `all` (default)"},
    ),
    Operation(
        "POST",
        "/api/market/orders/",
        "Place an order (needs your simulator running; `clientOrderId` makes it idempotent)",
        UserOrder,
        request=OrderTicket,
        status=201,
        errors=(
            MarketCode.UNKNOWN_SYMBOL,
            MarketCode.INVALID_QUANTITY,
            MarketCode.INVALID_PRICE,
            MarketCode.INSUFFICIENT_CASH,
            MarketCode.INSUFFICIENT_POSITION,
            SimulatorCode.SIMULATOR_NOT_RUNNING,
            MarketCode.MARKET_UNAVAILABLE,
            MarketCode.INVALID_STOP_PRICE,
            MarketCode.INVALID_TRAIL,
            MarketCode.INVALID_TIME_IN_FORCE,
            MarketCode.INVALID_BRACKET,
        ),
    ),
    Operation(
        "POST",
        "/api/market/orders/{orderId}/replace/",
        "Amend an open order's quantity or prices (takes effect after the entry latency; see the protocol's §4b)",
        UserOrder,
        request=OrderAmendment,
        errors=(
            MarketCode.ORDER_NOT_FOUND,
            MarketCode.ORDER_NOT_REPLACEABLE,
            MarketCode.INVALID_QUANTITY,
            MarketCode.INVALID_PRICE,
            MarketCode.INVALID_STOP_PRICE,
            MarketCode.INVALID_TRAIL,
            MarketCode.INVALID_BRACKET,
            MarketCode.INSUFFICIENT_CASH,
            MarketCode.INSUFFICIENT_POSITION,
        ),
    ),
    Operation(
        "POST",
        "/api/market/orders/{orderId}/cancel/",
        "Cancel an open order (it takes effect after the entry latency; a fill meanwhile may win: see §4b)",
        UserOrder,
        errors=(MarketCode.ORDER_NOT_FOUND, MarketCode.ORDER_NOT_CANCELABLE, MarketCode.CANCEL_TOO_LATE),
    ),
    Operation("GET", "/api/market/positions/", "Your positions at the last prices", UserPosition, many=True),
    Operation("GET", "/api/market/fills/", "Your fills, newest first (at most 500)", FillView, many=True),
    Operation("GET", "/api/market/account/", "Cash, equity and reserved cash", AccountSummary),
    Operation(
        "GET",
        "/api/market/candles/",
        "Closed OHLCV bars of a symbol, oldest first (the open bar is in the stream)",
        CandleView,
        many=True,
        query={
            "symbol": "a listed symbol (required)",
            "interval": "`1s`, `1m` or `5m` (required)",
            "from": "epoch ms: bars opening at or after it",
            "to": "epoch ms: bars opening before it",
            "limit": "the newest this many bars in the range, 1..1000 (default 500)",
        },
        errors=(HttpCode.INVALID_REQUEST, MarketCode.UNKNOWN_SYMBOL),
    ),
]

# The account's journal, figures and reset (market_app.api.journal; docs/protocol.md §4c).
_RANGE = {
    "from": "start of the window, inclusive: ISO-8601 (no offset is UTC) or epoch ms; "
    "default the last reset before `to`",
    "to": "end of the window, exclusive: ISO-8601 or epoch ms; default now",
    "format": "`json` (default) or `csv` (also chosen by `Accept: text/csv`)",
}
OPERATIONS += [
    Operation(
        "GET",
        "/api/market/journal/orders/",
        "Your orders created in [from, to), oldest first, streamed (CSV columns: docs/protocol.md §4c)",
        JournalOrder,
        many=True,
        query=_RANGE,
        alternatives=("text/csv",),
        errors=(HttpCode.INVALID_REQUEST,),
    ),
    Operation(
        "GET",
        "/api/market/journal/fills/",
        "Your fills in [from, to), oldest first, streamed (CSV columns: docs/protocol.md §4c)",
        JournalFill,
        many=True,
        query=_RANGE,
        alternatives=("text/csv",),
        errors=(HttpCode.INVALID_REQUEST,),
    ),
    Operation(
        "GET",
        "/api/market/journal/equity/",
        "Your equity samples in [from, to): JSON at most `points` of them evenly spread, CSV every one",
        EquityPoint,
        many=True,
        query=_RANGE | {"points": "JSON only: at most this many samples, 2 to 5000 (default 500)"},
        alternatives=("text/csv",),
        errors=(HttpCode.INVALID_REQUEST,),
    ),
    Operation(
        "GET",
        "/api/market/journal/performance/",
        "Your figures over [from, to): realized and unrealized profit, fees, max drawdown, round trips, win rate",
        AccountPerformance,
        query=_RANGE,
        alternatives=("text/csv",),
        errors=(HttpCode.INVALID_REQUEST,),
    ),
    Operation(
        "GET",
        "/api/market/account/resets/",
        "Your account's resets, oldest first (all, or those in [from, to))",
        AccountResetView,
        many=True,
        query={"from": _RANGE["from"], "to": _RANGE["to"]},
        errors=(HttpCode.INVALID_REQUEST,),
    ),
    Operation(
        "POST",
        "/api/market/account/reset/",
        "Reset your paper account to its starting cash (needs the simulator stopped)",
        AccountResetView,
        errors=(AccountCode.ACCOUNT_IN_USE,),
    ),
]
