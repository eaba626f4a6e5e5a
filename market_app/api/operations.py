"""The market app's HTTP operations, for the OpenAPI document (sessions_app.openapi)."""

from market_app.http_messages import FillView, InstrumentView
from market_app.messages import AccountSummary, OrderTicket, UserOrder, UserPosition
from sessions_app.errors import ErrorCode
from sessions_app.openapi import Operation

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
            ErrorCode.UNKNOWN_SYMBOL,
            ErrorCode.INVALID_QUANTITY,
            ErrorCode.INVALID_PRICE,
            ErrorCode.INSUFFICIENT_CASH,
            ErrorCode.INSUFFICIENT_POSITION,
            ErrorCode.SIMULATOR_NOT_RUNNING,
            ErrorCode.MARKET_UNAVAILABLE,
        ),
    ),
    Operation(
        "POST",
        "/api/market/orders/{orderId}/cancel/",
        "Cancel an open order",
        UserOrder,
        errors=(ErrorCode.ORDER_NOT_FOUND, ErrorCode.ORDER_NOT_CANCELABLE),
    ),
    Operation("GET", "/api/market/positions/", "Your positions at the last prices", UserPosition, many=True),
    Operation("GET", "/api/market/fills/", "Your fills, newest first (at most 500)", FillView, many=True),
    Operation("GET", "/api/market/account/", "Cash, equity and reserved cash", AccountSummary),
]
