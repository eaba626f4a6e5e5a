"""The simulated exchange: instruments, the shared price feed, and each user's paper-trading
account (cash, orders, fills, positions)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from simulator_app.leases import Leased
from simulator_app.models import SimulatorProfile


class _DecimalOptions(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: _DecimalOptions = {"max_digits": 24, "decimal_places": 8}
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,19}$"


class Instrument(models.Model):
    symbol = models.CharField(max_length=20, unique=True, validators=[RegexValidator(SYMBOL_PATTERN)])
    name = models.CharField(max_length=100)
    tick_size = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.00000001"))])
    start_price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.00000001"))])
    volatility = models.FloatField(
        default=0.3, validators=[MinValueValidator(0.0)], help_text="Annualized, 0.3 = 30 %."
    )
    drift = models.FloatField(default=0.05, help_text="Annualized expected return.")
    base_volume = models.PositiveIntegerField(default=1_000, help_text="Average volume traded per tick.")
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)
    # The liquidity model's settings (market_app.liquidity; docs/protocol.md, "Liquidity, depth and candles").
    spread_bps = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.0)], help_text="Typical full bid/ask spread, basis points."
    )
    book_levels = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="Book levels per side."
    )
    book_top_size = models.DecimalField(
        **MONEY,
        default=Decimal(500),
        validators=[MinValueValidator(Decimal("0.00000001"))],
        help_text="Typical size at the best bid and ask.",
    )
    book_decay = models.FloatField(
        default=1.15,
        validators=[MinValueValidator(0.01)],
        help_text="Level k holds top size x decay^k on average (below 1 thins the book outward).",
    )
    book_level_gap_ticks = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Price gap between book levels, in ticks."
    )
    lot_size = models.DecimalField(
        **MONEY,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal("0.00000001"))],
        help_text="Book sizes are whole multiples of this.",
    )

    # Margin accounts (market_app.margin): whether it may be sold short, and its own requirements (empty:
    # the MARKET_INITIAL_MARGIN and MARKET_MAINTENANCE_MARGIN_* settings).
    shortable = models.BooleanField(default=True, help_text="Margin accounts may sell it short.")
    initial_margin = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(1))],
        help_text="Share of an opening order's value the equity must cover.",
    )
    maintenance_margin_long = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Share of a long's value to keep.",
    )
    maintenance_margin_short = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Share of a short's value to keep.",
    )
    borrow_rate = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="A short's yearly borrow fee, of its value (0.03 = 3 %), charged a 360th each market day.",
    )

    class Meta:
        ordering = ["sort_order", "symbol"]

    def __str__(self) -> str:
        return self.symbol


class MarketFeed(Leased):
    """The one shared price feed (a single row). The worker producing it holds its lease
    (simulator_app.leases), as a simulator's worker holds the simulator's."""

    seq = models.BigIntegerField(default=0)
    seed = models.BigIntegerField(null=True, blank=True, help_text="The random process's seed (MARKET_SEED).")
    quotes = models.JSONField(default=dict, help_text="Symbol -> last quote (price, open, volume).")
    produced_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"market feed at tick {self.seq}"


class AccountType(models.TextChoices):
    CASH = "cash", "cash (long only, paid in full)"
    MARGIN = "margin", "margin (short selling, buying power from the margin requirements)"


class Account(models.Model):
    """A paper trading account. A user has one or more (docs/protocol.md §4f): the *default* one is what
    a simulator started without an `accountId` trades; the *current* one is the account of the
    simulator running or last started, what a snapshot, the journal and REST show without one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_accounts")
    name = models.CharField(max_length=64, default="Main")
    is_default = models.BooleanField(default=True)
    is_current = models.BooleanField(default=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Closed accounts keep their history.")
    account_type = models.CharField(max_length=6, choices=AccountType.choices, default=AccountType.CASH)
    # The market day a margin account's borrow fees and margin interest were last charged up to ("": none yet).
    charged_day = models.CharField(max_length=64, blank=True)
    profile = models.CharField(
        max_length=10, choices=SimulatorProfile.choices, blank=True, help_text="Empty: the service's default."
    )
    cash = models.DecimalField(**MONEY)
    starting_cash = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The commission schedule (market_app.fees); empty fields take the MARKET_COMMISSION_* settings.
    commission_per_share = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))], help_text="Per share or unit."
    )
    commission_minimum = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))], help_text="At least this per order."
    )
    commission_bps = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Basis points of notional.",
    )
    fees_paid = models.DecimalField(**MONEY, default=Decimal(0))
    # Risk limits (market_app.risk): empty is none; the RISK_*_CAP settings apply on top.
    max_order_value = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))], help_text="Quantity x price."
    )
    max_position_value = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Per symbol: its position and open buys, at their prices.",
    )
    max_open_orders = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_leverage = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Positions and open buys over equity.",
    )
    daily_loss_limit = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="A market day's fall of equity that cancels the open orders and stops new ones for the day.",
    )
    # The market day the account's equity was last watched in (selectors.feed_day, or bar_day in a market
    # of the simulator's own), its equity at the first sample of that day, and the day its daily loss
    # limit stopped trading ("": none).
    loss_day = models.CharField(max_length=64, blank=True)
    loss_day_start_equity = models.DecimalField(**MONEY, null=True, blank=True)
    loss_halted_day = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=models.Q(is_default=True), name="one_default_account"),
            models.UniqueConstraint(fields=["user"], condition=models.Q(is_current=True), name="one_current_account"),
            models.UniqueConstraint(
                fields=["user", "name"], condition=models.Q(closed_at__isnull=True), name="one_open_account_per_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.user}"


class OrderSide(models.TextChoices):
    BUY = "buy", "buy"
    SELL = "sell", "sell"


class OrderType(models.TextChoices):
    MARKET = "market", "market"
    LIMIT = "limit", "limit"
    STOP = "stop", "stop"
    STOP_LIMIT = "stop_limit", "stop limit"
    TRAILING_STOP = "trailing_stop", "trailing stop"


class TimeInForce(models.TextChoices):
    GTC = "gtc", "good till canceled"
    DAY = "day", "day (the simulated trading day)"
    IOC = "ioc", "immediate or cancel"
    FOK = "fok", "fill or kill"


class OrderClass(models.TextChoices):
    SIMPLE = "simple", "simple"
    BRACKET = "bracket", "bracket (entry with take-profit and stop-loss exits)"
    OCO = "oco", "one cancels other"


class OrderStatus(models.TextChoices):
    NEW = "new", "new"
    PARTIALLY_FILLED = "partially_filled", "partially filled"
    FILLED = "filled", "filled"
    CANCELED = "canceled", "canceled"
    REJECTED = "rejected", "rejected"


OPEN_ORDER_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="orders")
    simulator = models.ForeignKey(
        "simulator_app.Simulator", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    client_order_id = models.CharField(max_length=64, blank=True, help_text="The client's key: placing twice is once.")
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=13, choices=OrderType.choices)
    quantity = models.DecimalField(**MONEY)
    limit_price = models.DecimalField(**MONEY, null=True, blank=True)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    order_class = models.CharField(max_length=7, choices=OrderClass.choices, default=OrderClass.SIMPLE)
    stop_price = models.DecimalField(**MONEY, null=True, blank=True)
    trail_amount = models.DecimalField(**MONEY, null=True, blank=True)
    trail_percent = models.DecimalField(**MONEY, null=True, blank=True)
    # The matcher's state, persisted so a worker adopting the simulator continues it.
    trail_anchor = models.DecimalField(**MONEY, null=True, blank=True, help_text="High- (or low-) water mark.")
    triggered = models.BooleanField(default=False, help_text="A stop that triggered trades as market or limit.")
    queue_ahead = models.DecimalField(**MONEY, null=True, blank=True, help_text="Size ahead of a resting limit.")
    active_at_ms = models.BigIntegerField(default=0, help_text="Trades from the first tick stamped at or after.")
    expires_seq = models.BigIntegerField(null=True, blank=True, help_text="A day order ends at this feed tick.")
    # A bracket's entry keeps its exits until it fills; the exits then point back at it.
    take_profit_price = models.DecimalField(**MONEY, null=True, blank=True)
    stop_loss_price = models.DecimalField(**MONEY, null=True, blank=True)
    stop_loss_limit_price = models.DecimalField(**MONEY, null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    oco_group = models.UUIDField(null=True, blank=True, db_index=True, help_text="Legs that cancel each other.")
    fee = models.DecimalField(**MONEY, default=Decimal(0), help_text="Commission charged on its fills so far.")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    filled_qty = models.DecimalField(**MONEY, default=Decimal(0))
    average_price = models.DecimalField(**MONEY, null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    liquidation = models.BooleanField(default=False, help_text="Placed by a margin call's liquidation.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_order_id"],
                condition=~models.Q(client_order_id=""),
                name="one_order_per_client_order_id",
            )
        ]
        indexes = [
            models.Index(fields=["user", "status"], name="order_user_status"),
            # A snapshot's most recent closed orders read in order, however many the account has.
            models.Index(fields=["account", "-created_at"], name="order_account_created"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.instrument_id} ({self.status})"

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES


class Fill(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fills")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="fills")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="fills")
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = models.DecimalField(**MONEY)
    price = models.DecimalField(**MONEY)
    fee = models.DecimalField(**MONEY, default=Decimal(0), help_text="The commission charged on this fill.")
    tick_seq = models.BigIntegerField(help_text="The feed tick it traded on.")
    created_at = models.DateTimeField(auto_now_add=True)
    market_at = models.DateTimeField(
        null=True, blank=True, help_text="In a market of the simulator's own: the time of the bar it traded on."
    )

    class Meta:
        ordering = ["-created_at"]
        # A tick fills an order at most once, whichever worker (or a worker adopting after a crash) applies it.
        constraints = [models.UniqueConstraint(fields=["order", "tick_seq"], name="one_fill_per_order_and_tick")]
        indexes = [models.Index(fields=["account", "created_at"], name="fill_account_created")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.instrument_id} @ {self.price}"


class Position(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="positions")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    quantity = models.DecimalField(**MONEY, default=Decimal(0))
    average_price = models.DecimalField(**MONEY, default=Decimal(0))
    realized_pnl = models.DecimalField(**MONEY, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument__symbol"]
        constraints = [models.UniqueConstraint(fields=["account", "instrument"], name="one_position_per_instrument")]

    def __str__(self) -> str:
        return f"{self.quantity} {self.instrument_id}"


# --- The account's history: equity samples and resets (market_app.performance, docs/protocol.md §4c) ---


class EquitySample(models.Model):
    """The account's equity at a feed tick, written by the worker running the user's simulator
    every EQUITY_SAMPLE_INTERVAL_S (and once at a reset); kept EQUITY_SAMPLE_RETENTION_DAYS."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="equity_samples")
    at = models.DateTimeField()
    tick_seq = models.BigIntegerField(help_text="The feed tick whose prices valued the positions.")
    equity = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY)
    positions_value = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["account", "at"], name="equity_sample_account_at"),
            models.Index(fields=["at"], name="equity_sample_at"),
        ]

    def __str__(self) -> str:
        return f"{self.account} at {self.at:%Y-%m-%d %H:%M:%S}: {self.equity}"


class AccountReset(models.Model):
    """A paper account set back to its starting cash; the figures it had just before.

    Orders and fills stay: a reset starts a new epoch of the account (epoch n begins at its n-th reset)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="resets")
    at = models.DateTimeField()
    by_operator = models.BooleanField(default=False, help_text="Done in the admin, not by the user.")
    starting_cash = models.DecimalField(**MONEY)
    cash_before = models.DecimalField(**MONEY)
    positions_value_before = models.DecimalField(**MONEY)
    equity_before = models.DecimalField(**MONEY)
    realized_pnl_before = models.DecimalField(**MONEY)
    orders_canceled = models.PositiveIntegerField(default=0)
    positions_before = models.JSONField(default=dict, help_text="Symbol -> quantity, average price, realized profit.")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["account", "at"], name="account_reset_account_at")]

    def __str__(self) -> str:
        return f"reset of {self.account} at {self.at:%Y-%m-%d %H:%M:%S}"


class MarginCallStatus(models.TextChoices):
    OPEN = "open", "open"
    MET = "met", "met (the equity is back above the maintenance margin)"
    LIQUIDATED = "liquidated", "liquidated (not met in time)"


class MarginCall(models.Model):
    """A margin account's equity below its maintenance margin (market_app.margin), at a sample of market
    time `issued_at`: met if it is back above by `due_at`, else its positions are liquidated."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="margin_calls")
    status = models.CharField(max_length=10, choices=MarginCallStatus.choices, default=MarginCallStatus.OPEN)
    issued_at = models.DateTimeField()
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    equity = models.DecimalField(**MONEY, help_text="When issued.")
    maintenance_margin = models.DecimalField(**MONEY, help_text="When issued.")

    class Meta:
        ordering = ["issued_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(status="open"), name="one_open_margin_call_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"margin call on {self.account} at {self.issued_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class ChargeKind(models.TextChoices):
    BORROW_FEE = "borrow_fee", "borrow fee (a short's)"
    MARGIN_INTEREST = "margin_interest", "margin interest (on borrowed cash)"


class AccountCharge(models.Model):
    """A margin account's accrual for one market day (docs/protocol.md §4f), taken from its cash: the
    borrow fee of its shorts, or the interest on the cash it borrowed."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="charges")
    kind = models.CharField(max_length=16, choices=ChargeKind.choices)
    day = models.CharField(max_length=64, help_text="The market day it accrued over.")
    at = models.DateTimeField(help_text="When it was charged (market time).")
    amount = models.DecimalField(**MONEY)
    details = models.JSONField(default=dict, help_text="Borrow fees: symbol -> the short's value charged on.")

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["account", "kind", "day"], name="one_charge_per_kind_and_day")]
        indexes = [models.Index(fields=["account", "at"], name="account_charge_account_at")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.amount} on {self.account} for {self.day}"


class CandleInterval(models.TextChoices):
    SECOND = "1s", "1 second"
    MINUTE = "1m", "1 minute"
    FIVE_MINUTES = "5m", "5 minutes"


class Ohlcv(models.Model):
    """A bar's prices and volume (a candle of the feed, a dataset's bar)."""

    open = models.DecimalField(**MONEY)
    high = models.DecimalField(**MONEY)
    low = models.DecimalField(**MONEY)
    close = models.DecimalField(**MONEY)
    volume = models.BigIntegerField()

    class Meta:
        abstract = True


class Candle(Ohlcv):
    """A closed OHLCV bar of the feed (market_app.candles), kept for a bounded time per interval."""

    symbol = models.CharField(max_length=20)
    interval = models.CharField(max_length=2, choices=CandleInterval.choices)
    start_ms = models.BigIntegerField(help_text="Epoch ms at which the bar opens (a multiple of its interval).")

    class Meta:
        ordering = ["symbol", "interval", "start_ms"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "interval", "start_ms"], name="one_candle_per_symbol_interval")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} @ {self.start_ms}"


class Dataset(models.Model):
    """A file of bars kept for replay (market_app.datasets; docs/datasets.md): a user's own, private
    unless an operator shares it, or an operator's (no owner)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(max_length=100)
    shared = models.BooleanField(default=False, help_text="Every user may list and replay it.")
    source = models.CharField(max_length=300, blank=True, help_text="Where the bars come from, and their license.")
    bar_count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    # [{"symbol", "bars", "firstAt", "lastAt"}] (epoch ms), written once by the import: a listing reads no bar.
    symbols = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="dataset_name_unique_per_owner"),
            models.UniqueConstraint(
                fields=("name",), condition=models.Q(owner__isnull=True), name="dataset_name_unique_for_operators"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetBar(Ohlcv):
    """One bar of a dataset: a symbol's open, high, low, close and volume over the period from `at`."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="bars")
    symbol = models.CharField(max_length=20)
    at = models.DateTimeField()

    class Meta:
        ordering = ("dataset", "at", "symbol")
        constraints = [models.UniqueConstraint(fields=("dataset", "symbol", "at"), name="dataset_bar_unique")]
        indexes = [models.Index(fields=("dataset", "at"), name="dataset_bar_time")]
