"""Handlers of the market and order messages, the market events, and the moments a
connection starts or stops following the price stream."""

from __future__ import annotations

import uuid

from channels.db import database_sync_to_async

from market_app import selectors, services
from market_app.messages import (
    CancelOrder,
    MarketSubscription,
    OrderCanceled,
    OrderPlaced,
    PlaceOrder,
    RequestExchangeData,
    SnapshotReason,
    SubscribeMarket,
)
from market_app.relay import relay
from market_app.snapshots import exchange_data_status, order_view
from market_app.stream import stream_of
from sessions_app.consumers import SessionConsumer
from sessions_app.dispatch import handles, on_connection
from sessions_app.errors import ErrorCode, ErrorDetail, ProtocolError


def user_id_of(conn: SessionConsumer) -> int:
    assert conn.client is not None
    return conn.client.user.pk


async def send_snapshot(conn: SessionConsumer, reason: SnapshotReason, request_id: str | None = None) -> None:
    status = await database_sync_to_async(exchange_data_status)(
        user_id=user_id_of(conn), reason=reason, request_id=request_id
    )
    await conn.send_message(status)


async def follow(conn: SessionConsumer) -> None:
    stream = stream_of(conn)
    if stream.following:
        return
    stream.following = True
    await relay.follow(conn)


async def unfollow(conn: SessionConsumer) -> None:
    stream = stream_of(conn)
    stream.following = False
    stream.drop_pending()
    relay.unfollow(conn)


# --- When a connection follows the prices --------------------------------------


@on_connection("connected")
async def follow_if_running_on_connect(conn: SessionConsumer) -> None:
    if conn.simulator.status == "running":
        await follow(conn)
        await send_snapshot(conn, "connected")


@on_connection("reconnected")
async def snapshot_on_reconnect(conn: SessionConsumer) -> None:
    if conn.simulator.status == "running":
        await send_snapshot(conn, "reconnected")


@on_connection("resync")
async def snapshot_on_resync(conn: SessionConsumer) -> None:
    # The account matters even while the simulator is stopped: always a full snapshot.
    await send_snapshot(conn, "resync")


@on_connection("simulator_changed")
async def follow_while_running(conn: SessionConsumer) -> None:
    running = conn.simulator.status == "running"
    if running and not stream_of(conn).following:
        await follow(conn)
        await send_snapshot(conn, "simulator_started")
    elif not running:
        await unfollow(conn)


# --- Events -----------------------------------------------------------------------


@on_connection("disconnected")
async def stop_following_on_disconnect(conn: SessionConsumer) -> None:
    relay.unfollow(conn)


# --- Client messages ------------------------------------------------------------


@handles(SubscribeMarket)
async def subscribe_market(conn: SessionConsumer, message: SubscribeMarket) -> None:
    conn.require_own_device(message.deviceId)
    listed = [i.symbol for i in await database_sync_to_async(selectors.active_instruments)()]
    if message.symbols:
        unknown = sorted(set(message.symbols) - set(listed))
        if unknown:
            raise ProtocolError(
                ErrorCode.UNKNOWN_SYMBOL,
                f"unknown symbols: {', '.join(unknown)}",
                details=[ErrorDetail(field="symbols", problem=f"{symbol} is not listed") for symbol in unknown],
            )
        stream_of(conn).selection = frozenset(message.symbols)
        chosen = sorted(set(message.symbols))
    else:
        stream_of(conn).selection = None
        chosen = listed
    await conn.send_message(MarketSubscription(requestId=message.requestId, success=True, symbols=chosen))


@handles(RequestExchangeData)
async def request_exchange_data(conn: SessionConsumer, message: RequestExchangeData) -> None:
    conn.require_own_device(message.deviceId)
    await send_snapshot(conn, "request", request_id=message.requestId)


@handles(PlaceOrder)
async def place_order(conn: SessionConsumer, message: PlaceOrder) -> None:
    conn.require_own_device(message.deviceId)
    conn.require_active_session()
    order = await database_sync_to_async(services.order_place)(user_id=user_id_of(conn), ticket=message)
    await conn.send_message(OrderPlaced(requestId=message.requestId, success=True, order=order_view(order)))


@handles(CancelOrder)
async def cancel_order(conn: SessionConsumer, message: CancelOrder) -> None:
    conn.require_own_device(message.deviceId)
    try:
        order_id = uuid.UUID(message.orderId)
    except ValueError:
        raise ProtocolError(ErrorCode.ORDER_NOT_FOUND) from None
    order = await database_sync_to_async(services.order_cancel)(user_id=user_id_of(conn), order_id=order_id)
    await conn.send_message(OrderCanceled(requestId=message.requestId, success=True, order=order_view(order)))
