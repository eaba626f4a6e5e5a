"""The market app's error codes, registered with the error catalogue when imported.

Over HTTP an order the schema allows and one of the exchange's rules refuses (its fields against each
other, the instrument or the market) is a 422; a symbol no instrument has, a 404."""

from __future__ import annotations

from enum import StrEnum

from sessions_app.realtime.errors import CodeKind, ErrorCodeSpec, register_error_codes


class MarketCode(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_POSITION = "insufficient_position"
    NOT_SHORTABLE = "not_shortable"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    SHORT_EQUITY_TOO_LOW = "short_equity_too_low"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    MARKET_UNAVAILABLE = "market_unavailable"
    INVALID_STOP_PRICE = "invalid_stop_price"
    INVALID_TRAIL = "invalid_trail"
    INVALID_TIME_IN_FORCE = "invalid_time_in_force"
    INVALID_BRACKET = "invalid_bracket"
    ORDER_NOT_REPLACEABLE = "order_not_replaceable"
    CANCEL_TOO_LATE = "cancel_too_late"
    BOOK_NOT_SUBSCRIBED = "book_not_subscribed"
    ORDER_VALUE_LIMIT = "order_value_limit"
    POSITION_VALUE_LIMIT = "position_value_limit"
    OPEN_ORDERS_LIMIT = "open_orders_limit"
    LEVERAGE_LIMIT = "leverage_limit"
    DAILY_LOSS_LIMIT = "daily_loss_limit"


register_error_codes(
    CodeKind.REQUEST,
    {
        MarketCode.UNKNOWN_SYMBOL: ErrorCodeSpec("The symbol is not a listed, active instrument.", None, 404),
        MarketCode.INVALID_QUANTITY: ErrorCodeSpec(
            "The quantity is not a positive number with at most 8 decimals (and at most 1,000,000,000).", None, 422
        ),
        MarketCode.INVALID_PRICE: ErrorCodeSpec(
            "A limit order needs a positive `limitPrice` (at most 1,000,000,000) that is a multiple of the "
            "instrument's tick size; a market order takes none.",
            None,
            422,
        ),
        MarketCode.INSUFFICIENT_CASH: ErrorCodeSpec(
            "The buy would cost more than the cash not already reserved by open buy orders.", None, 409
        ),
        MarketCode.INSUFFICIENT_POSITION: ErrorCodeSpec(
            "The sell exceeds the position not already reserved by open sell orders: a cash account sells only "
            "what it holds (short selling needs a margin account, docs/protocol.md §4f).",
            None,
            409,
        ),
        MarketCode.NOT_SHORTABLE: ErrorCodeSpec(
            "The sell would open a short in an instrument that cannot be sold short (its `shortable` is off).",
            None,
            409,
        ),
        MarketCode.SHORT_EQUITY_TOO_LOW: ErrorCodeSpec(
            "A margin account opens a short only with at least MARKET_SHORT_MIN_EQUITY of equity (2,000 by default).",
            None,
            409,
        ),
        MarketCode.INSUFFICIENT_BUYING_POWER: ErrorCodeSpec(
            "A margin account's equity, less the initial margin its positions and open orders hold, does not cover "
            "the order's own (its opening value times the initial margin rate).",
            None,
            409,
        ),
        MarketCode.ORDER_NOT_FOUND: ErrorCodeSpec("No such order of this user.", None, 404),
        MarketCode.ORDER_NOT_CANCELABLE: ErrorCodeSpec("The order is already filled, canceled or rejected.", None, 409),
        MarketCode.MARKET_UNAVAILABLE: ErrorCodeSpec(
            "The price feed has not produced a price yet; retry shortly.", None, 503
        ),
        MarketCode.INVALID_STOP_PRICE: ErrorCodeSpec(
            "A `stop` or `stop_limit` order needs a positive `stopPrice` on the instrument's tick grid, on the "
            "right side of the last price (above it for a buy, below it for a sell); other types take none.",
            None,
            422,
        ),
        MarketCode.INVALID_TRAIL: ErrorCodeSpec(
            "A `trailing_stop` needs exactly one of `trailAmount` (on the tick grid) and `trailPercent` "
            "(below 100), and no `stopPrice` or `limitPrice`; other types take neither.",
            None,
            422,
        ),
        MarketCode.INVALID_TIME_IN_FORCE: ErrorCodeSpec(
            "`ioc` and `fok` are for simple market and limit orders; stops, brackets and OCO orders are "
            "`gtc` or `day`.",
            None,
            422,
        ),
        MarketCode.INVALID_BRACKET: ErrorCodeSpec(
            "A `bracket` needs a market or limit entry with `takeProfit` and `stopLoss` on either side of the "
            "entry price (a buy: take-profit above, stop-loss below); an `oco` is a limit leg with a `stopLoss` "
            "on either side of the last price; a `simple` order takes no exits.",
            None,
            422,
        ),
        MarketCode.ORDER_NOT_REPLACEABLE: ErrorCodeSpec(
            "The order cannot be amended: it is filled, canceled or rejected, the change is not one its type "
            "takes (a triggered stop's stop price, a bracket exit's quantity), or it changes nothing.",
            None,
            409,
        ),
        MarketCode.CANCEL_TOO_LATE: ErrorCodeSpec(
            "The order filled completely while the cancel was on its way (the entry latency): the fill won.",
            None,
            409,
        ),
        MarketCode.BOOK_NOT_SUBSCRIBED: ErrorCodeSpec(
            "`request_book` needs a `subscribe_market` with `depth` and `bookDeltas`, and only its symbols.",
            None,
            409,
        ),
        MarketCode.ORDER_VALUE_LIMIT: ErrorCodeSpec(
            "The order is worth more (its quantity at its limit, stop or the last price) than the account's "
            "`maxOrderValue` or the operator's cap (docs/protocol.md §4c).",
            None,
            409,
        ),
        MarketCode.POSITION_VALUE_LIMIT: ErrorCodeSpec(
            "The buy would take the symbol's position and open buys above the account's `maxPositionValue` or "
            "the operator's cap.",
            None,
            409,
        ),
        MarketCode.OPEN_ORDERS_LIMIT: ErrorCodeSpec(
            "The account has as many open orders as its `maxOpenOrders` or the operator's cap allows: cancel one "
            "first.",
            None,
            409,
        ),
        MarketCode.DAILY_LOSS_LIMIT: ErrorCodeSpec(
            "The account's equity fell its `dailyLossLimit` (or the operator's cap) below the market day's first "
            "sample: its open orders were canceled and new ones are refused until the shared feed's next day.",
            None,
            409,
        ),
        MarketCode.LEVERAGE_LIMIT: ErrorCodeSpec(
            "The buy would take the positions and open buys above `maxLeverage` times the equity (the "
            "account's, or the operator's cap).",
            None,
            409,
        ),
    },
)


class AccountCode(StrEnum):
    """Codes of the accounts, their reset and journal (docs/protocol.md §4c, §4f)."""

    ACCOUNT_IN_USE = "account_in_use"
    LIMIT_ABOVE_CAP = "limit_above_cap"
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_NAME_TAKEN = "account_name_taken"
    ACCOUNT_LIMIT = "account_limit"
    DEFAULT_ACCOUNT = "default_account"
    STARTING_CASH_ABOVE_CAP = "starting_cash_above_cap"


register_error_codes(
    CodeKind.REQUEST,
    {
        AccountCode.ACCOUNT_IN_USE: ErrorCodeSpec(
            "Resetting the account needs its simulator stopped (none starting, running or stopping): "
            "send stop_simulator, wait for `stopped`, and retry.",
            None,
            409,
        ),
        AccountCode.LIMIT_ABOVE_CAP: ErrorCodeSpec(
            "A risk limit is above the operator's cap for it (`details` names each; `risk_limits` and "
            "GET /api/market/account/limits/ show the caps). Nothing was changed.",
            None,
            422,
        ),
        AccountCode.UNKNOWN_ACCOUNT: ErrorCodeSpec(
            "No account of yours has this `accountId` (GET /api/market/accounts/ lists them).", None, 404
        ),
        AccountCode.ACCOUNT_CLOSED: ErrorCodeSpec(
            "The account is closed: its history can be read, nothing can trade in it or change it.", None, 409
        ),
        AccountCode.ACCOUNT_NAME_TAKEN: ErrorCodeSpec(
            "Another open account of yours has this name. Nothing was changed.", None, 409
        ),
        AccountCode.ACCOUNT_LIMIT: ErrorCodeSpec(
            "You have as many open accounts as the operator allows (MARKET_ACCOUNTS_PER_USER): close one first.",
            None,
            409,
        ),
        AccountCode.DEFAULT_ACCOUNT: ErrorCodeSpec(
            "The default account cannot be closed: make another one the default first.", None, 409
        ),
        AccountCode.STARTING_CASH_ABOVE_CAP: ErrorCodeSpec(
            "`startingCash` is above the operator's cap (MARKET_MAX_STARTING_CASH; `details` says it). "
            "Nothing was opened.",
            None,
            422,
        ),
    },
)


class DatasetCode(StrEnum):
    """Codes of the datasets of bars (docs/datasets.md)."""

    INVALID_DATASET = "invalid_dataset"
    DATASET_TOO_LARGE = "dataset_too_large"
    DATASET_NAME_TAKEN = "dataset_name_taken"
    DATASET_LIMIT = "dataset_limit"
    UNKNOWN_DATASET = "unknown_dataset"
    INVALID_MARKET = "invalid_market"
    RANGE_OUTSIDE_DATA = "range_outside_data"
    DATASET_IN_USE = "dataset_in_use"


register_error_codes(
    CodeKind.REQUEST,
    {
        DatasetCode.INVALID_DATASET: ErrorCodeSpec(
            "The bar file or its name is not what docs/datasets.md describes; `details` names the first bad "
            "line and field (`line 12.high`). Nothing was stored. A 422: the body is text, as the schema says; "
            "its lines break the format's rules.",
            None,
            422,
        ),
        DatasetCode.DATASET_TOO_LARGE: ErrorCodeSpec(
            "The file is larger than DATASET_MAX_BYTES or holds more than DATASET_MAX_BARS bars. Nothing was stored.",
            None,
            413,
        ),
        DatasetCode.DATASET_NAME_TAKEN: ErrorCodeSpec("You already have a dataset of this name.", None, 409),
        DatasetCode.DATASET_LIMIT: ErrorCodeSpec(
            "You keep DATASETS_PER_USER datasets already: delete one first.", None, 409
        ),
        DatasetCode.UNKNOWN_DATASET: ErrorCodeSpec(
            "No dataset of this id that you may see (yours, or a shared one), or none of yours to delete.", None, 404
        ),
        DatasetCode.INVALID_MARKET: ErrorCodeSpec(
            "`start_simulator`'s `market` does not hold together: a replay without `datasetId`, symbols the dataset "
            "does not have, `start` after `end`, a field of another source; `details` names the field.",
            None,
            422,
        ),
        DatasetCode.RANGE_OUTSIDE_DATA: ErrorCodeSpec(
            "The replay's `start` .. `end` holds no bar of the chosen symbols; `details` names the data's range.",
            None,
            422,
        ),
        DatasetCode.DATASET_IN_USE: ErrorCodeSpec(
            "A live simulator replays this dataset: stop it first, then delete the dataset.", None, 409
        ),
    },
)


class ReportCode(StrEnum):
    """Codes of a replay run's report (docs/replay.md)."""

    UNKNOWN_SIMULATOR = "unknown_simulator"
    REPORT_UNAVAILABLE = "report_unavailable"
    UNKNOWN_BENCHMARK = "unknown_benchmark"


register_error_codes(
    CodeKind.REQUEST,
    {
        ReportCode.UNKNOWN_SIMULATOR: ErrorCodeSpec("No simulator of yours has this id.", None, 404),
        ReportCode.REPORT_UNAVAILABLE: ErrorCodeSpec(
            "The simulator does not replay a dataset (the shared feed, a synthetic walk): a report needs a replay.",
            None,
            409,
        ),
        ReportCode.UNKNOWN_BENCHMARK: ErrorCodeSpec(
            "`benchmark` is not a symbol of the replay's dataset; `details` lists them.", None, 422
        ),
    },
)
