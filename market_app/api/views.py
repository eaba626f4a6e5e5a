"""REST for paper trading, scoped to the requesting user's current account (market_app.accounts).
Bodies are the same models as the socket's messages (market_app.messages), and errors the same
`error` shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from django import db
from pydantic import BaseModel
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app import selectors, services
from market_app.errors import MarketCode
from market_app.http_messages import AccountQuery, CandleQuery, FillView, InstrumentView, OrderListQuery, OrderPath
from market_app.messages import CandleView, OrderAmendment, OrderTicket, RiskLimits
from market_app.models import OPEN_ORDER_STATUSES
from market_app.snapshots import exchange_data_status, order_view, risk_limits_view
from sessions_app.api.authentication import user_id_of
from sessions_app.api.parsing import parse_body, parse_path, parse_query
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.message_base import epoch_ms

LIST_LIMIT = 500


def dump(models: Sequence[BaseModel]) -> list[dict]:
    return [model.model_dump(mode="json") for model in models]


class InstrumentListView(APIView):
    def get(self, request: Request) -> Response:
        quotes = selectors.feed_snapshot().quotes
        views = []
        for instrument in selectors.active_instruments():
            quote = quotes.get(instrument.symbol)
            views.append(
                InstrumentView(
                    symbol=instrument.symbol,
                    name=instrument.name,
                    tickSize=float(instrument.tick_size),
                    price=float(quote.price if quote else instrument.start_price),
                    change=float(quote.change) if quote else 0.0,
                    volume=quote.volume if quote else 0,
                )
            )
        return Response(dump(views))


class OrderListView(APIView):
    def get(self, request: Request) -> Response:
        query = parse_query(OrderListQuery, request)
        orders = selectors.orders_of_account(services.account_for(user_id_of(request)).pk)
        if query.status == "open":
            orders = orders.filter(status__in=OPEN_ORDER_STATUSES)
        return Response(dump([order_view(order) for order in orders[:LIST_LIMIT]]))

    def post(self, request: Request) -> Response:
        ticket = parse_body(OrderTicket, request)
        order = services.order_place(user_id=user_id_of(request), ticket=ticket)
        return Response(order_view(order).model_dump(mode="json"), status=201)


def order_id_of(order_id: str) -> uuid.UUID:
    return uuid.UUID(parse_path(OrderPath, orderId=order_id).orderId)


class OrderCancelView(APIView):
    def post(self, request: Request, order_id: str) -> Response:
        """As the socket's cancel_order: it takes effect after the profile's entry latency, and a fill
        applied meanwhile that completed the order wins (`cancel_too_late`)."""
        order_uuid = order_id_of(order_id)
        user_id = user_id_of(request)
        ticket = services.order_cancel_arrive(user_id=user_id, order_id=order_uuid)
        if ticket.latency_ms:
            # Django's ASGI handler gives each request a thread of its own, so the wait holds only this
            # one; its database connection goes back to the pool meanwhile.
            db.connection.close()
            time.sleep(ticket.latency_ms / 1000)
        order = services.order_cancel(user_id=user_id, order_id=order_uuid, raced=ticket.latency_ms > 0)
        return Response(order_view(order).model_dump(mode="json"))


class OrderReplaceView(APIView):
    def post(self, request: Request, order_id: str) -> Response:
        amendment = parse_body(OrderAmendment, request)
        order = services.order_replace(user_id=user_id_of(request), order_id=order_id_of(order_id), amendment=amendment)
        return Response(order_view(order).model_dump(mode="json"))


class PositionListView(APIView):
    def get(self, request: Request) -> Response:
        snapshot = exchange_data_status(user_id=user_id_of(request), reason="request")
        return Response(dump(list(snapshot.userPositions.values())))


class FillListView(APIView):
    def get(self, request: Request) -> Response:
        fills = selectors.fills_of_account(services.account_for(user_id_of(request)).pk)[:LIST_LIMIT]
        views = [
            FillView(
                fillId=str(fill.id),
                orderId=str(fill.order_id),
                symbol=fill.instrument.symbol,
                side=fill.side,
                quantity=float(fill.quantity),
                price=float(fill.price),
                tickSeq=fill.tick_seq,
                createdAt=epoch_ms(fill.created_at),
                fee=float(fill.fee),
            )
            for fill in fills
        ]
        return Response(dump(views))


class AccountView(APIView):
    def get(self, request: Request) -> Response:
        snapshot = exchange_data_status(user_id=user_id_of(request), reason="request")
        return Response(snapshot.account.model_dump(mode="json"))


class AccountLimitsView(APIView):
    def get(self, request: Request) -> Response:
        query = parse_query(AccountQuery, request)
        user_id = user_id_of(request)
        if query.accountId is None:
            account = selectors.account_of_user(user_id)
        else:
            account = selectors.account_chosen(user_id=user_id, account_id=query.accountId)
        return Response(risk_limits_view(account).model_dump(mode="json"))

    def put(self, request: Request) -> Response:
        query = parse_query(AccountQuery, request)
        limits = parse_body(RiskLimits, request)
        account = services.account_risk_limits_set(
            user_id=user_id_of(request), limits=limits, account_id=query.accountId
        )
        return Response(risk_limits_view(account).model_dump(mode="json"))


class CandleListView(APIView):
    def get(self, request: Request) -> Response:
        query = parse_query(CandleQuery, request)
        listed = {i.symbol for i in selectors.active_instruments()} | set(selectors.feed_snapshot().quotes)
        if query.symbol not in listed:
            raise ProtocolError(MarketCode.UNKNOWN_SYMBOL, f"unknown symbol {query.symbol!r}")
        bars = selectors.candles_of(
            symbol=query.symbol, interval=query.interval, start_ms=query.start, end_ms=query.end, limit=query.limit
        )
        views = [
            CandleView(
                interval=query.interval,
                start=bar.start_ms,
                open=float(bar.open),
                high=float(bar.high),
                low=float(bar.low),
                close=float(bar.close),
                volume=bar.volume,
            )
            for bar in bars
        ]
        return Response(dump(views))
