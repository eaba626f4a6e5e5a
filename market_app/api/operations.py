"""The market app's HTTP operations, for the OpenAPI document (sessions_app.openapi)."""

from market_app.errors import AccountCode, DatasetCode, MarketCode, ReportCode
from market_app.http_messages import (
    AccountListQuery,
    AccountPath,
    AccountPerformance,
    AccountQuery,
    CandleQuery,
    DatasetPath,
    DatasetUploadQuery,
    DatasetView,
    EquityPoint,
    EquityQuery,
    FillView,
    InstrumentView,
    JournalCharge,
    JournalFill,
    JournalOrder,
    JournalQuery,
    OrderListQuery,
    OrderPath,
    ReportPath,
    ReportQuery,
    ResetQuery,
    RunReport,
)
from market_app.messages import (
    AccountOpening,
    AccountResetView,
    AccountSettings,
    AccountSummary,
    CandleView,
    OrderAmendment,
    OrderTicket,
    RiskLimits,
    RiskLimitsView,
    TradingAccount,
    UserOrder,
    UserPosition,
)
from sessions_app.openapi import Operation
from simulator_app.errors import SimulatorCode

# 409: the account's risk limits (market_app.risk) refuse the order.
RISK_LIMIT_CODES = (
    MarketCode.ORDER_VALUE_LIMIT,
    MarketCode.POSITION_VALUE_LIMIT,
    MarketCode.OPEN_ORDERS_LIMIT,
    MarketCode.LEVERAGE_LIMIT,
    MarketCode.DAILY_LOSS_LIMIT,
)
# 422: the ticket fits the schema, and one of the exchange's rules refuses it. These relate fields to
# each other, to the instrument and to the market, which JSON Schema cannot state.
ORDER_RULES = (
    "A ticket that fits the schema can still break one of the exchange's rules, which relate its fields to "
    "each other (a limit order's `limitPrice`, a bracket's exits), to the instrument (its tick size, at "
    "most 8 decimals) and to the market (a stop on the right side of the last price): the answer is then "
    "422 with the rule's code (docs/protocol/codes.md)."
)
ORDER_RULE_CODES = (
    MarketCode.INVALID_QUANTITY,
    MarketCode.INVALID_PRICE,
    MarketCode.INVALID_STOP_PRICE,
    MarketCode.INVALID_TRAIL,
    MarketCode.INVALID_TIME_IN_FORCE,
    MarketCode.INVALID_BRACKET,
)
# The order an answer names, for the operations on it (stateful clients and fuzzers follow these).
ORDER_LINKS = {
    "cancel": ("post/api/market/orders/{orderId}/cancel/", {"orderId": "$response.body#/orderId"}),
    "replace": ("post/api/market/orders/{orderId}/replace/", {"orderId": "$response.body#/orderId"}),
}

OPERATIONS = [
    Operation("GET", "/api/market/instruments/", "Listed instruments with their last price", InstrumentView, many=True),
    Operation(
        "GET",
        "/api/market/orders/",
        "Your orders, newest first (at most 500)",
        UserOrder,
        many=True,
        query=OrderListQuery,
    ),
    Operation(
        "POST",
        "/api/market/orders/",
        "Place an order (needs your simulator running; `clientOrderId` makes it idempotent)",
        UserOrder,
        request=OrderTicket,
        request_example={"symbol": "SPY", "side": "buy", "orderType": "market", "quantity": 1},
        status=201,
        description=ORDER_RULES,
        links=ORDER_LINKS,
        errors=(
            MarketCode.UNKNOWN_SYMBOL,
            *ORDER_RULE_CODES,
            MarketCode.INSUFFICIENT_CASH,
            MarketCode.INSUFFICIENT_POSITION,
            *RISK_LIMIT_CODES,
            SimulatorCode.SIMULATOR_NOT_RUNNING,
            MarketCode.MARKET_UNAVAILABLE,
        ),
    ),
    Operation(
        "POST",
        "/api/market/orders/{orderId}/replace/",
        "Amend an open order's quantity or prices (takes effect after the entry latency; see the protocol's §4b)",
        UserOrder,
        request=OrderAmendment,
        request_example={"quantity": 2},
        path_parameters=OrderPath,
        description=ORDER_RULES.replace("A ticket", "An amendment"),
        links=ORDER_LINKS,
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
            MarketCode.ORDER_VALUE_LIMIT,
            MarketCode.POSITION_VALUE_LIMIT,
            MarketCode.LEVERAGE_LIMIT,
        ),
    ),
    Operation(
        "POST",
        "/api/market/orders/{orderId}/cancel/",
        "Cancel an open order (it takes effect after the entry latency; a fill meanwhile may win: see §4b)",
        UserOrder,
        path_parameters=OrderPath,
        errors=(MarketCode.ORDER_NOT_FOUND, MarketCode.ORDER_NOT_CANCELABLE, MarketCode.CANCEL_TOO_LATE),
    ),
    Operation("GET", "/api/market/positions/", "Your positions at the last prices", UserPosition, many=True),
    Operation("GET", "/api/market/fills/", "Your fills, newest first (at most 500)", FillView, many=True),
    Operation("GET", "/api/market/account/", "Cash, equity and reserved cash", AccountSummary),
    Operation(
        "GET",
        "/api/market/account/limits/",
        "Your account's risk limits and the operator's caps (an order is held to the lower)",
        RiskLimitsView,
        query=AccountQuery,
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "PUT",
        "/api/market/account/limits/",
        "Set every risk limit of your account at once (one left out or null, or no body at all, is none), each at "
        "most its cap",
        RiskLimitsView,
        request=RiskLimits,
        body_required=False,
        request_example={"maxOrderValue": 50000, "maxOpenOrders": 20},
        query=AccountQuery,
        errors=(AccountCode.LIMIT_ABOVE_CAP, AccountCode.UNKNOWN_ACCOUNT, AccountCode.ACCOUNT_CLOSED),
    ),
    Operation(
        "GET",
        "/api/market/candles/",
        "Closed OHLCV bars of a symbol, oldest first (the open bar is in the stream)",
        CandleView,
        many=True,
        query=CandleQuery,
        errors=(MarketCode.UNKNOWN_SYMBOL,),
    ),
]

# The account's journal, figures and reset (market_app.api.journal; docs/protocol.md §4c).
OPERATIONS += [
    Operation(
        "GET",
        "/api/market/journal/orders/",
        "Your orders created in [from, to), oldest first, streamed (CSV columns: docs/protocol.md §4c)",
        JournalOrder,
        many=True,
        query=JournalQuery,
        alternatives=("text/csv",),
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "GET",
        "/api/market/journal/fills/",
        "Your fills in [from, to), oldest first, streamed (CSV columns: docs/protocol.md §4c)",
        JournalFill,
        many=True,
        query=JournalQuery,
        alternatives=("text/csv",),
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "GET",
        "/api/market/journal/charges/",
        "A margin account's borrow fees and margin interest in [from, to), oldest first, streamed (CSV too)",
        JournalCharge,
        many=True,
        query=JournalQuery,
        alternatives=("text/csv",),
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "GET",
        "/api/market/journal/equity/",
        "Your equity samples in [from, to): JSON at most `points` of them evenly spread, CSV every one",
        EquityPoint,
        many=True,
        query=EquityQuery,
        alternatives=("text/csv",),
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "GET",
        "/api/market/journal/performance/",
        "Your figures over [from, to): realized and unrealized profit, fees, max drawdown, round trips, win rate",
        AccountPerformance,
        query=JournalQuery,
        alternatives=("text/csv",),
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "GET",
        "/api/market/account/resets/",
        "Your account's resets, oldest first (all, or those in [from, to))",
        AccountResetView,
        many=True,
        query=ResetQuery,
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "POST",
        "/api/market/account/reset/",
        "Reset a paper account to its starting cash (needs its simulator stopped)",
        AccountResetView,
        query=AccountQuery,
        errors=(AccountCode.ACCOUNT_IN_USE, AccountCode.UNKNOWN_ACCOUNT, AccountCode.ACCOUNT_CLOSED),
    ),
]

# The user's accounts (market_app.api.accounts; docs/protocol.md §4f).
OPERATIONS += [
    Operation(
        "GET",
        "/api/market/accounts/",
        "Your open accounts (and closed ones with `closed=true`), oldest first",
        TradingAccount,
        many=True,
        query=AccountListQuery,
    ),
    Operation(
        "POST",
        "/api/market/accounts/",
        "Open another account (its own cash, positions, orders, journal and report)",
        TradingAccount,
        request=AccountOpening,
        request_example={"name": "Swing", "startingCash": 25000},
        status=201,
        description=(
            "`startingCash` is at most the operator's `MARKET_MAX_STARTING_CASH`, a setting the schema cannot state: "
            "above it the answer is 422 `starting_cash_above_cap`, and nothing is opened."
        ),
        errors=(AccountCode.ACCOUNT_NAME_TAKEN, AccountCode.ACCOUNT_LIMIT, AccountCode.STARTING_CASH_ABOVE_CAP),
    ),
    Operation(
        "GET",
        "/api/market/accounts/{accountId}/",
        "One of your accounts, open or closed",
        TradingAccount,
        path_parameters=AccountPath,
        errors=(AccountCode.UNKNOWN_ACCOUNT,),
    ),
    Operation(
        "PATCH",
        "/api/market/accounts/{accountId}/",
        "Rename an open account, make it the default, or change its profile or commission schedule",
        TradingAccount,
        request=AccountSettings,
        body_required=False,  # no body changes nothing
        request_example={"name": "Swing trades", "default": True},
        path_parameters=AccountPath,
        errors=(AccountCode.UNKNOWN_ACCOUNT, AccountCode.ACCOUNT_CLOSED, AccountCode.ACCOUNT_NAME_TAKEN),
    ),
    Operation(
        "POST",
        "/api/market/accounts/{accountId}/close/",
        "Close an account (not the default one, nor one whose simulator is live); its history stays readable",
        TradingAccount,
        path_parameters=AccountPath,
        errors=(AccountCode.UNKNOWN_ACCOUNT, AccountCode.DEFAULT_ACCOUNT, AccountCode.ACCOUNT_IN_USE),
    ),
]

# Datasets of bars (docs/datasets.md).
BARS_EXAMPLE = (
    "timestamp,symbol,open,high,low,close,volume\n"
    "2026-01-05T14:30:00Z,AAPL,190.12,190.43,190.09,190.32,247065\n"
    "2026-01-05T14:31:00Z,AAPL,190.32,190.74,190.28,190.50,220262\n"
)
OPERATIONS += [
    Operation(
        "GET", "/api/market/datasets/", "Your datasets of bars and the shared ones, by name", DatasetView, many=True
    ),
    Operation(
        "POST",
        "/api/market/datasets/",
        "Upload a dataset: the CSV (or Parquet file) of bars as the body (docs/datasets.md), checked whole first",
        DatasetView,
        query=DatasetUploadQuery,
        request_media_type="text/csv",
        request_text_example=BARS_EXAMPLE,
        request_alternatives=("application/vnd.apache.parquet",),
        status=201,
        description=(
            "The body is the file: a header `timestamp,symbol,open,high,low,close,volume` (any order) and one bar a "
            "line, or a Parquet file of these seven columns (`Content-Type: application/vnd.apache.parquet`). A "
            "body that is not such a file is refused with 422 `invalid_dataset`, `details` naming its first bad "
            "line (or row) and field; nothing is stored unless the whole file is good."
        ),
        errors=(
            DatasetCode.INVALID_DATASET,
            DatasetCode.DATASET_TOO_LARGE,
            DatasetCode.DATASET_NAME_TAKEN,
            DatasetCode.DATASET_LIMIT,
        ),
    ),
    Operation(
        "GET",
        "/api/market/datasets/{datasetId}/",
        "One of your datasets, or a shared one",
        DatasetView,
        path_parameters=DatasetPath,
        errors=(DatasetCode.UNKNOWN_DATASET,),
    ),
    Operation(
        "DELETE",
        "/api/market/datasets/{datasetId}/",
        "Delete one of your datasets with its bars (not while a simulator replays it)",
        None,
        path_parameters=DatasetPath,
        status=204,
        errors=(DatasetCode.UNKNOWN_DATASET, DatasetCode.DATASET_IN_USE),
    ),
]

# A replay run's report (docs/replay.md).
OPERATIONS += [
    Operation(
        "GET",
        "/api/market/simulators/{simulatorId}/report/",
        "The report of one of your replay simulators: figures, equity against a benchmark, monthly returns",
        RunReport,
        path_parameters=ReportPath,
        query=ReportQuery,
        alternatives=("text/html",),
        description=(
            "Built from the replay's bars up to the one its clock reached and the fills of its orders, so it "
            "reads the same while it plays, after it stopped, and for the same replay run again. "
            "`?format=html` answers one self-contained page."
        ),
        errors=(ReportCode.UNKNOWN_SIMULATOR, ReportCode.REPORT_UNAVAILABLE, ReportCode.UNKNOWN_BENCHMARK),
    ),
]
