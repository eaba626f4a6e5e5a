"""Handlers of the market and order messages, the market events, and the moments a
connection starts or stops following the price stream."""

from __future__ import annotations

import dataclasses
import uuid

from channels.db import database_sync_to_async
from django.conf import settings
from django.dispatch import receiver

from market_app import accounts, journal, selectors, services
from market_app.errors import MarketCode
from market_app.events import MarketTickEvent
from market_app.messages import (
    AccountChanged,
    AccountList,
    AccountResetDone,
    CancelOrder,
    CloseAccount,
    ListAccounts,
    MarketAck,
    MarketSubscription,
    OpenAccount,
    OrderCanceled,
    OrderPlaced,
    OrderReplaced,
    PlaceOrder,
    ReplaceOrder,
    RequestBook,
    RequestExchangeData,
    ResetAccount,
    RiskLimits,
    RiskLimitsSet,
    RiskLimitsView,
    SetRiskLimits,
    SnapshotReason,
    SubscribeMarket,
    TradingAccount,
    UpdateAccount,
)
from market_app.models import Account
from market_app.price_stream import OwnPrices, deliver_own_tick, stream_of
from market_app.realism import profile_name
from market_app.snapshots import exchange_data_status, order_view, risk_limits_view, trading_account_view
from market_app.tick_fanout import relay
from sessions_app.checks import require_active_session, require_own_device
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.deferred import answer_later
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.realtime.message_routes import handles, handles_event
from sessions_app.signals import connection_closed, connection_opened, connection_resynced, simulator_changed
from simulator_app import services as simulator_services
from simulator_app.clock import ClockSettings
from simulator_app.messages import ClockView, MarketView, SimulatorStarted, StartSimulator


async def send_snapshot(conn: Connection, reason: SnapshotReason, request_id: str | None = None) -> None:
    status = await database_sync_to_async(exchange_data_status)(
        user_id=conn.user_id, reason=reason, request_id=request_id
    )
    await conn.send_message(status)


def is_running(conn: Connection) -> bool:
    return conn.simulator.status == "running"


async def follow(conn: Connection) -> None:
    stream = stream_of(conn)
    stream.view = dataclasses.replace(stream.view, profile=profile_name(conn.simulator.profile))
    if stream.following:
        return
    stream.following = True
    await relay.follow(conn)


async def unfollow(conn: Connection) -> None:
    stream = stream_of(conn)
    stream.following = False
    stream.drop_pending()
    stream.start_over()
    relay.unfollow(conn)


# --- When a connection follows the prices (sessions_app.signals) -------------------


@receiver(connection_opened, dispatch_uid="market-follow-on-connect")
async def follow_if_running_on_connect(sender: object, connection: Connection, **kwargs: object) -> None:
    if is_running(connection):
        await follow(connection)
        await send_snapshot(connection, "connected")


@receiver(connection_resynced, dispatch_uid="market-snapshot-on-resync")
async def snapshot_on_resync(sender: object, connection: Connection, reason: str, **kwargs: object) -> None:
    if reason == "reconnected":  # a client that does not track the stream: prices and account, while running
        if is_running(connection):
            await send_snapshot(connection, "reconnected")
    else:
        # The account matters even while the simulator is stopped: always a full snapshot.
        await send_snapshot(connection, "resync")


@receiver(simulator_changed, dispatch_uid="market-follow-while-running")
async def follow_while_running(sender: object, connection: Connection, **kwargs: object) -> None:
    if is_running(connection) and not stream_of(connection).following:
        await follow(connection)
        await send_snapshot(connection, "simulator_started")
    elif not is_running(connection):
        await unfollow(connection)


@receiver(connection_closed, dispatch_uid="market-unfollow-on-close")
async def stop_following_on_close(sender: object, connection: Connection, **kwargs: object) -> None:
    relay.unfollow(connection)


@handles_event("market.own_tick")
async def own_tick(conn: Connection, event: MarketTickEvent) -> None:
    """A bar of the user's own market (market_app.own_market), sent to the user's group."""
    await deliver_own_tick(conn, event)


# --- Client messages ------------------------------------------------------------


@handles(StartSimulator)
async def start_simulator(conn: Connection, message: StartSimulator) -> None:
    """Answered here, not in simulator_app: a `market` is checked against the market's datasets first."""
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    simulator, clock = await database_sync_to_async(accounts.simulator_start_on_account)(
        user_id=conn.user_id,
        session_id=conn.session_id,
        account_id=message.accountId,
        profile=message.profile,
        choice=message.market,
    )
    # Known at once for this connection's heartbeats; every connection of the user also hears the push.
    summary = simulator_services.simulator_summary(simulator)
    if summary.supersedes(conn.simulator):
        conn.simulator = summary
    await conn.send_message(
        SimulatorStarted(
            requestId=message.requestId,
            success=True,
            simulatorId=str(simulator.id),
            status=simulator.status,
            # Named when the client chose one (a spec client's reply stays the spec's); session_info always names it.
            profile=simulator.profile if message.profile is not None else None,
            market=MarketView.of(simulator.market) if message.market is not None else None,
            clock=_first_clock(clock),
        )
    )


def _first_clock(clock: ClockSettings | None) -> ClockView | None:
    if clock is None:
        return None
    return ClockView(speed="max" if clock.speed is None else clock.speed, paused=clock.paused, lockstep=clock.lockstep)


async def symbols_of_market(conn: Connection) -> list[str]:
    """The symbols the connection's prices carry: the shared feed's instruments, or its user's own market's."""
    if conn.simulator.own_market:
        symbols: list[str] | None = await database_sync_to_async(selectors.own_market_symbols)(user_id=conn.user_id)
        if symbols is not None:
            return symbols
    return [i.symbol for i in await database_sync_to_async(selectors.active_instruments)()]


@handles(SubscribeMarket)
async def subscribe_market(conn: Connection, message: SubscribeMarket) -> None:
    require_own_device(conn, message.deviceId)
    listed = await symbols_of_market(conn)
    if message.symbols:
        unknown = sorted(set(message.symbols) - set(listed))
        if unknown:
            raise ProtocolError(
                MarketCode.UNKNOWN_SYMBOL,
                f"unknown symbols: {', '.join(unknown)}",
                details=[ErrorDetail(field="symbols", problem=f"{symbol} is not listed") for symbol in unknown],
            )
        selection: frozenset[str] | None = frozenset(message.symbols)
        chosen = sorted(set(message.symbols))
    else:
        selection, chosen = None, listed
    depth = message.depth or 0
    candles = tuple(dict.fromkeys(message.candles or ()))  # in the order asked, once each
    book_deltas = bool(message.bookDeltas and depth)
    stream = stream_of(conn)
    view = dataclasses.replace(
        stream.view,
        selection=selection,
        depth=depth,
        candles=candles,
        book_deltas=book_deltas,
        trades=bool(message.trades),
    )
    stream.subscribe(view, settings.MARKET_FLOW_WINDOW if message.flowControl else 0)
    await conn.send_message(
        MarketSubscription(
            requestId=message.requestId,
            success=True,
            symbols=chosen,
            depth=depth or None,
            candles=list(candles) or None,
            window=stream.window or None,
            bookDeltas=book_deltas or None,
            trades=view.trades or None,
        )
    )


@handles(RequestBook)
async def request_book(conn: Connection, message: RequestBook) -> None:
    require_own_device(conn, message.deviceId)
    stream = stream_of(conn)
    if not stream.view.book_deltas:
        raise ProtocolError(
            MarketCode.BOOK_NOT_SUBSCRIBED, "request_book needs subscribe_market with depth and bookDeltas first"
        )
    if message.symbols:
        outside = sorted(set(message.symbols) - (stream.view.selection or set(await symbols_of_market(conn))))
        if outside:
            raise ProtocolError(
                MarketCode.BOOK_NOT_SUBSCRIBED,
                f"not in the subscription: {', '.join(outside)}",
                details=[ErrorDetail(field="symbols", problem=f"{symbol} is not subscribed") for symbol in outside],
            )
    reply = stream.book_snapshot(message.requestId, message.symbols)
    if reply is None:
        raise ProtocolError(MarketCode.MARKET_UNAVAILABLE, "no tick has come since subscribing; retry shortly")
    await conn.send_message(reply)


@handles(MarketAck)
async def market_ack(conn: Connection, message: MarketAck) -> None:
    """Flow control of the prices; for a market of the user's own in lock-step, also the bar's
    acknowledgement its worker waits for."""
    require_own_device(conn, message.deviceId)
    await stream_of(conn).acknowledged(conn, message.seq)
    own = conn.state(OwnPrices)
    if conn.simulator.own_market and own.ack_to:
        changed, own.orders_changed = own.orders_changed, False
        await services.own_ack_send(
            channel=own.ack_to, simulator_id=own.simulator_id, seq=message.seq, orders_changed=changed
        )


def _orders_changing(conn: Connection) -> None:
    """An order request on a market of the user's own: the next acknowledgement says so, and its worker
    reads the orders before the next bar (a lock-step backtest trades them on it, whatever the timing)."""
    if conn.simulator.own_market:
        conn.state(OwnPrices).orders_changed = True


@handles(RequestExchangeData)
async def request_exchange_data(conn: Connection, message: RequestExchangeData) -> None:
    require_own_device(conn, message.deviceId)
    await send_snapshot(conn, "request", request_id=message.requestId)


@handles(PlaceOrder)
async def place_order(conn: Connection, message: PlaceOrder) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    own = conn.state(OwnPrices) if conn.simulator.own_market else OwnPrices()
    _orders_changing(conn)
    order = await database_sync_to_async(services.order_place)(
        user_id=conn.user_id, ticket=message, own_quotes=own.quotes or None, own_time_ms=own.time_ms
    )
    await conn.send_message(OrderPlaced(requestId=message.requestId, success=True, order=order_view(order)))


def _order_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ProtocolError(MarketCode.ORDER_NOT_FOUND) from None


@handles(CancelOrder)
async def cancel_order(conn: Connection, message: CancelOrder) -> None:
    """The cancel takes effect after the profile's entry latency; a fill applied meanwhile may win the
    race: then the reply is the error `cancel_too_late` (the snapshot shows the fill)."""
    require_own_device(conn, message.deviceId)
    order_id = _order_id(message.orderId)
    _orders_changing(conn)
    ticket = await database_sync_to_async(services.order_cancel_arrive)(user_id=conn.user_id, order_id=order_id)

    async def take_effect() -> None:
        order = await database_sync_to_async(services.order_cancel)(
            user_id=conn.user_id, order_id=order_id, raced=ticket.latency_ms > 0
        )
        await conn.send_message(OrderCanceled(requestId=message.requestId, success=True, order=order_view(order)))

    if ticket.latency_ms and not conn.simulator.own_market:  # the connection goes on meanwhile (own: a bar is it)
        answer_later(conn, ticket.latency_ms / 1000, take_effect, request_id=message.requestId)
    else:
        await take_effect()


@handles(ReplaceOrder)
async def replace_order(conn: Connection, message: ReplaceOrder) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    own = conn.state(OwnPrices).quotes if conn.simulator.own_market else None
    _orders_changing(conn)
    order = await database_sync_to_async(services.order_replace)(
        user_id=conn.user_id, order_id=_order_id(message.orderId), amendment=message, own_quotes=own
    )
    await conn.send_message(OrderReplaced(requestId=message.requestId, success=True, order=order_view(order)))


def _reset(user_id: int, account_id: int | None) -> AccountResetDone:
    reset = services.account_reset(user_id=user_id, account_id=account_id)
    view = journal.reset_view(reset, journal.account_epochs(account_id=reset.account_id))
    return AccountResetDone(requestId="", success=True, reset=view)


@handles(ResetAccount)
async def reset_account(conn: Connection, message: ResetAccount) -> None:
    require_own_device(conn, message.deviceId)
    done = await database_sync_to_async(_reset)(conn.user_id, message.accountId)
    await conn.send_message(done.model_copy(update={"requestId": message.requestId}))


# --- Accounts (market_app.accounts; docs/protocol.md §4f) -----------------------------------------


def _accounts(user_id: int, closed: bool) -> list[TradingAccount]:
    services.account_for(user_id)  # a user who never traded has their default account listed
    return [trading_account_view(account) for account in selectors.accounts_of_user(user_id, closed=closed)]


@handles(ListAccounts)
async def list_accounts(conn: Connection, message: ListAccounts) -> None:
    require_own_device(conn, message.deviceId)
    views = await database_sync_to_async(_accounts)(conn.user_id, bool(message.closed))
    await conn.send_message(AccountList(requestId=message.requestId, success=True, accounts=views))


async def _send_account(conn: Connection, request_id: str, account: Account) -> None:
    await conn.send_message(AccountChanged(requestId=request_id, success=True, account=trading_account_view(account)))


@handles(OpenAccount)
async def open_account(conn: Connection, message: OpenAccount) -> None:
    require_own_device(conn, message.deviceId)
    account = await database_sync_to_async(accounts.account_open)(user_id=conn.user_id, opening=message.account)
    await _send_account(conn, message.requestId, account)


@handles(UpdateAccount)
async def update_account(conn: Connection, message: UpdateAccount) -> None:
    require_own_device(conn, message.deviceId)
    account = await database_sync_to_async(accounts.account_update)(
        user_id=conn.user_id, account_id=message.accountId, change=message.settings
    )
    await _send_account(conn, message.requestId, account)


@handles(CloseAccount)
async def close_account(conn: Connection, message: CloseAccount) -> None:
    require_own_device(conn, message.deviceId)
    account = await database_sync_to_async(accounts.account_close)(user_id=conn.user_id, account_id=message.accountId)
    await _send_account(conn, message.requestId, account)


def _set_risk_limits(user_id: int, limits: RiskLimits, account_id: int | None) -> RiskLimitsView:
    return risk_limits_view(services.account_risk_limits_set(user_id=user_id, limits=limits, account_id=account_id))


@handles(SetRiskLimits)
async def set_risk_limits(conn: Connection, message: SetRiskLimits) -> None:
    require_own_device(conn, message.deviceId)
    view = await database_sync_to_async(_set_risk_limits)(conn.user_id, message.limits, message.accountId)
    await conn.send_message(RiskLimitsSet(requestId=message.requestId, success=True, riskLimits=view))
