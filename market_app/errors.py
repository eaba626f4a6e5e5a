"""The market app's error codes, registered with the kernel's catalogue when imported."""

from __future__ import annotations

from enum import StrEnum

from sessions_app.realtime import CodeKind, ErrorCodeSpec, register_error_codes


class MarketCode(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_POSITION = "insufficient_position"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    MARKET_UNAVAILABLE = "market_unavailable"


register_error_codes(
    CodeKind.REQUEST,
    {
        MarketCode.UNKNOWN_SYMBOL: ErrorCodeSpec("The symbol is not a listed, active instrument.", None, 400),
        MarketCode.INVALID_QUANTITY: ErrorCodeSpec(
            "The quantity is not a positive number with at most 8 decimals (and at most 1,000,000,000).", None, 400
        ),
        MarketCode.INVALID_PRICE: ErrorCodeSpec(
            "A limit order needs a positive `limitPrice` (at most 1,000,000,000) that is a multiple of the "
            "instrument's tick size; a market order takes none.",
            None,
            400,
        ),
        MarketCode.INSUFFICIENT_CASH: ErrorCodeSpec(
            "The buy would cost more than the cash not already reserved by open buy orders.", None, 409
        ),
        MarketCode.INSUFFICIENT_POSITION: ErrorCodeSpec(
            "The sell exceeds the position not already reserved by open sell orders (no short selling).", None, 409
        ),
        MarketCode.ORDER_NOT_FOUND: ErrorCodeSpec("No such order of this user.", None, 404),
        MarketCode.ORDER_NOT_CANCELABLE: ErrorCodeSpec("The order is already filled, canceled or rejected.", None, 409),
        MarketCode.MARKET_UNAVAILABLE: ErrorCodeSpec(
            "The price feed has not produced a price yet; retry shortly.", None, 503
        ),
    },
)


class AccountCode(StrEnum):
    """Codes of the account's reset and journal (docs/protocol.md §4c)."""

    ACCOUNT_IN_USE = "account_in_use"


register_error_codes(
    CodeKind.REQUEST,
    {
        AccountCode.ACCOUNT_IN_USE: ErrorCodeSpec(
            "Resetting the account needs its simulator stopped (none starting, running or stopping): "
            "send stop_simulator, wait for `stopped`, and retry.",
            None,
            409,
        ),
    },
)
