"""REST for paper trading, scoped to the requesting user. Bodies are the same models as
the socket's messages (market_app.messages), and errors the same `error` shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from django import db
from pydantic import BaseModel, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app import selectors, services
from market_app.errors import MarketCode
from market_app.http_messages import CandleQuery, FillView, InstrumentView
from market_app.messages import CandleView, OrderAmendment, OrderTicket
from market_app.models import OPEN_ORDER_STATUSES
from market_app.snapshots import exchange_data_status, order_view
from sessions_app.api.authentication import user_id_of
from sessions_app.api.views import parse_body
from sessions_app.errors import HttpCode
from sessions_app.realtime import ProtocolError, details_from, epoch_ms

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
        orders = selectors.orders_of_user(user_id_of(request))
        status = request.query_params.get("status", "all")
        if status == "open":
            orders = orders.filter(status__in=OPEN_ORDER_STATUSES)
        elif status != "all":
            raise ProtocolError(HttpCode.INVALID_REQUEST, "status must be `open` or `all`")
        return Response(dump([order_view(order) for order in orders[:LIST_LIMIT]]))

    def post(self, request: Request) -> Response:
        ticket = parse_body(OrderTicket, request)
        order = services.order_place(user_id=user_id_of(request), ticket=ticket)
        return Response(order_view(order).model_dump(mode="json"), status=201)


class OrderCancelView(APIView):
    def post(self, request: Request, order_id: uuid.UUID) -> Response:
        """As the socket's cancel_order: it takes effect after the profile's entry latency, and a fill
        applied meanwhile that completed the order wins (`cancel_too_late`)."""
        user_id = user_id_of(request)
        ticket = services.order_cancel_arrive(user_id=user_id, order_id=order_id)
        if ticket.latency_ms:
            # Django's ASGI handler gives each request a thread of its own, so the wait holds only this
            # one; its database connection goes back to the pool meanwhile.
            db.connection.close()
            time.sleep(ticket.latency_ms / 1000)
        order = services.order_cancel(user_id=user_id, order_id=order_id, raced=ticket.latency_ms > 0)
        return Response(order_view(order).model_dump(mode="json"))


class OrderReplaceView(APIView):
    def post(self, request: Request, order_id: uuid.UUID) -> Response:
        amendment = parse_body(OrderAmendment, request)
        order = services.order_replace(user_id=user_id_of(request), order_id=order_id, amendment=amendment)
        return Response(order_view(order).model_dump(mode="json"))


class PositionListView(APIView):
    def get(self, request: Request) -> Response:
        snapshot = exchange_data_status(user_id=user_id_of(request), reason="request")
        return Response(dump(list(snapshot.userPositions.values())))


class FillListView(APIView):
    def get(self, request: Request) -> Response:
        fills = selectors.fills_of_user(user_id_of(request))[:LIST_LIMIT]
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


class CandleListView(APIView):
    def get(self, request: Request) -> Response:
        try:
            query = CandleQuery.model_validate(dict(request.query_params.items()))
        except ValidationError as error:
            raise ProtocolError(
                HttpCode.INVALID_REQUEST,
                "the query does not match the schema",
                details=details_from(error, whole="(query)"),
            ) from None
        if query.start is not None and query.end is not None and query.end <= query.start:
            raise ProtocolError(HttpCode.INVALID_REQUEST, "`to` must be after `from`")
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
