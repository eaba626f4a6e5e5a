"""The market app's HTTP operations, for the OpenAPI document (sessions_app.openapi)."""

from market_app.errors import MarketCode
from market_app.http_messages import FillView, InstrumentView
from market_app.messages import AccountSummary, CandleView, OrderAmendment, OrderTicket, UserOrder, UserPosition
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
        "Cancel an open order",
        UserOrder,
        errors=(MarketCode.ORDER_NOT_FOUND, MarketCode.ORDER_NOT_CANCELABLE),
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
