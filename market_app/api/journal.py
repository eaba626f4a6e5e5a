"""REST for the account's journal, figures and reset (docs/protocol.md §4c), scoped to the requesting user.

`from` and `to` take an RFC 3339 date-time (with its offset: `Z`, or `+01:00` written %2B01:00) or epoch
milliseconds (market_app.http_messages.JournalQuery); the window is [from, to), to defaulting to now and
from to the start of the epoch `to` falls in (the last reset before it), and empty when `to` is not after
`from`. `?format=csv` or `Accept: text/csv` answers CSV (columns in
market_app.journal), else JSON. Orders, fills and samples stream a page at a time, so a large range
is never held in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from pydantic import BaseModel
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app import journal, performance, selectors, services
from market_app.http_messages import (
    AccountQuery,
    EquityPoint,
    EquityQuery,
    JournalCharge,
    JournalFill,
    JournalOrder,
    JournalQuery,
    ResetQuery,
)
from market_app.journal import Epochs, Window
from market_app.models import AccountCharge, EquitySample, Fill, Order
from sessions_app.api.authentication import user_id_of
from sessions_app.api.parsing import parse_query
from sessions_app.realtime.message_base import epoch_ms

T = TypeVar("T")
CSV = "text/csv"


def account_id_of(query: AccountQuery, request: Request) -> int:
    """The account a request is about: the `accountId` of one of the user's, or their current one."""
    user_id = user_id_of(request)
    if query.accountId is None:
        return services.account_for(user_id).pk
    return selectors.account_chosen(user_id=user_id, account_id=query.accountId).pk


def window_of(query: JournalQuery | ResetQuery, account_id: int) -> Window:
    """[from, to): empty when `to` is at or before `from`."""
    return journal.default_window(account_id=account_id, start=query.start, end=query.end)


def wants_csv(query: JournalQuery, request: Request) -> bool:
    if query.format is not None:
        return query.format == "csv"
    return CSV in request.headers.get("Accept", "")


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


class Export(Generic[T]):
    """A keyset-paged query as a stream: CSV (a header line, then rows) or a JSON array."""

    def __init__(
        self,
        *,
        fetch: Callable[[Any], list[T]],
        cursor: Callable[[T], Any],
        columns: Sequence[str],
        row: Callable[[T], list[str]],
        model: Callable[[T], BaseModel],
        as_csv: bool,
    ) -> None:
        self.fetch, self.cursor, self.as_csv = fetch, cursor, as_csv
        self.columns, self.row, self.model = columns, row, model

    def _head(self) -> str:
        return _csv_text([self.columns]) if self.as_csv else "["

    def _tail(self) -> str:
        return "" if self.as_csv else "]"

    def _page(self, page: list[T], first: bool) -> str:
        if self.as_csv:
            return _csv_text([self.row(item) for item in page])
        body = ",".join(self.model(item).model_dump_json(exclude_none=True) for item in page)
        return body if first else "," + body

    def sync(self) -> Iterator[bytes]:
        yield self._head().encode()
        after, first = None, True
        while page := self.fetch(after):
            yield self._page(page, first).encode()
            after, first = self.cursor(page[-1]), False
        yield self._tail().encode()

    async def asynchronous(self) -> AsyncIterator[bytes]:
        yield self._head().encode()
        after, first = None, True
        while page := await sync_to_async(self.fetch)(after):
            yield self._page(page, first).encode()
            after, first = self.cursor(page[-1]), False
        yield self._tail().encode()

    def response(self, request: Request, filename: str) -> StreamingHttpResponse:
        # Under ASGI the body must be an async iterator (Django would read a sync one whole first).
        content = self.asynchronous() if isinstance(request._request, ASGIRequest) else self.sync()
        media = f"{CSV}; charset=utf-8" if self.as_csv else "application/json"
        response = StreamingHttpResponse(content, content_type=media)
        if self.as_csv:
            response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response


class JournalView(APIView):
    """Errors are JSON whatever was asked for, so DRF's own `format`/Accept negotiation is bypassed."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type


def order_model(epochs: Epochs) -> Callable[[Order], JournalOrder]:
    def model(order: Order) -> JournalOrder:
        return JournalOrder(
            orderId=str(order.id),
            createdAt=epoch_ms(order.created_at),
            updatedAt=epoch_ms(order.updated_at),
            symbol=order.instrument.symbol,
            side=order.side,
            orderType=order.order_type,
            quantity=float(order.quantity),
            limitPrice=None if order.limit_price is None else float(order.limit_price),
            status=order.status,
            filledQty=float(order.filled_qty),
            averagePrice=None if order.average_price is None else float(order.average_price),
            clientOrderId=order.client_order_id,
            reason=order.reason,
            epoch=epochs.of(order.created_at),
            simulatorId=None if order.simulator_id is None else str(order.simulator_id),
            market=journal.order_market(order),
            liquidation=order.liquidation,
        )

    return model


def fill_model(epochs: Epochs) -> Callable[[Fill], JournalFill]:
    def model(fill: Fill) -> JournalFill:
        return JournalFill(
            fillId=str(fill.id),
            orderId=str(fill.order_id),
            createdAt=epoch_ms(fill.created_at),
            tickSeq=fill.tick_seq,
            symbol=fill.instrument.symbol,
            side=fill.side,
            quantity=float(fill.quantity),
            price=float(fill.price),
            fee=float(fill.fee),
            notional=float(journal.fill_notional(fill)),
            epoch=epochs.of(fill.created_at),
            marketAt=None if fill.market_at is None else epoch_ms(fill.market_at),
        )

    return model


def equity_model(epochs: Epochs) -> Callable[[EquitySample], EquityPoint]:
    def model(sample: EquitySample) -> EquityPoint:
        return EquityPoint(
            at=epoch_ms(sample.at),
            tickSeq=sample.tick_seq,
            equity=float(sample.equity),
            cash=float(sample.cash),
            positionsValue=float(sample.positions_value),
            epoch=epochs.of(sample.at),
        )

    return model


def charge_model(epochs: Epochs) -> Callable[[AccountCharge], JournalCharge]:
    def model(charge: AccountCharge) -> JournalCharge:
        return JournalCharge(
            chargeId=charge.pk,
            at=epoch_ms(charge.at),
            day=charge.day,
            kind=charge.kind,
            amount=float(charge.amount),
            details=charge.details,
            epoch=epochs.of(charge.at),
        )

    return model


def journal_export(
    request: Request,
    name: str,
    fetch: Callable[..., list[T]],
    cursor: Callable[[T], tuple[Any, Any]],
    columns: Sequence[str],
    row: Callable[[T, Epochs], list[str]],
    model: Callable[[Epochs], Callable[[T], BaseModel]],
) -> StreamingHttpResponse:
    """One of the journal's streamed lists (`fetch`: a page of it, `journal.journal_*_page`) of the account
    and window the query names."""
    query = parse_query(JournalQuery, request)
    account_id = account_id_of(query, request)
    window, as_csv = window_of(query, account_id), wants_csv(query, request)
    epochs = journal.account_epochs(account_id=account_id)
    return Export(
        fetch=lambda after: fetch(account_id=account_id, window=window, after=after),
        cursor=cursor,
        columns=columns,
        row=lambda item: row(item, epochs),
        model=model(epochs),
        as_csv=as_csv,
    ).response(request, name)


class JournalOrdersView(JournalView):
    def get(self, request: Request) -> StreamingHttpResponse:
        return journal_export(
            request,
            "orders",
            journal.journal_orders_page,
            lambda order: (order.created_at, order.id),
            journal.ORDER_COLUMNS,
            journal.order_row,
            order_model,
        )


class JournalFillsView(JournalView):
    def get(self, request: Request) -> StreamingHttpResponse:
        return journal_export(
            request,
            "fills",
            journal.journal_fills_page,
            lambda fill: (fill.created_at, fill.id),
            journal.FILL_COLUMNS,
            journal.fill_row,
            fill_model,
        )


class JournalChargesView(JournalView):
    def get(self, request: Request) -> StreamingHttpResponse:
        return journal_export(
            request,
            "charges",
            journal.journal_charges_page,
            lambda charge: (charge.at, charge.pk),
            journal.CHARGE_COLUMNS,
            journal.charge_row,
            charge_model,
        )


class EquityView(JournalView):
    def get(self, request: Request) -> StreamingHttpResponse | Response:
        query = parse_query(EquityQuery, request)
        account_id = account_id_of(query, request)
        window, as_csv = window_of(query, account_id), wants_csv(query, request)
        epochs = journal.account_epochs(account_id=account_id)
        if as_csv:
            return Export(
                fetch=lambda after: journal.equity_samples_page(account_id=account_id, window=window, after=after),
                cursor=lambda sample: (sample.at, sample.pk),
                columns=journal.EQUITY_COLUMNS,
                row=lambda sample: journal.equity_row(sample, epochs),
                model=equity_model(epochs),
                as_csv=True,
            ).response(request, "equity")
        samples = journal.equity_curve(account_id=account_id, window=window, points=query.points)
        model = equity_model(epochs)
        return Response([model(sample).model_dump(mode="json") for sample in samples])


class PerformanceView(JournalView):
    def get(self, request: Request) -> Response | HttpResponse:
        query = parse_query(JournalQuery, request)
        account_id = account_id_of(query, request)
        window, as_csv = window_of(query, account_id), wants_csv(query, request)
        figures = performance.account_performance(account_id=account_id, window=window)
        if as_csv:
            body = _csv_text([journal.PERFORMANCE_COLUMNS, performance.performance_row(figures)])
            response = HttpResponse(body.encode(), content_type=f"{CSV}; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="performance.csv"'
            return response
        return Response(performance.performance_view(figures).model_dump(mode="json", exclude_none=True))


class ResetListView(APIView):
    def get(self, request: Request) -> Response:
        query = parse_query(ResetQuery, request)
        account_id = account_id_of(query, request)
        window = window_of(query, account_id) if query.start is not None or query.end is not None else None
        epochs = journal.account_epochs(account_id=account_id)
        resets = journal.resets_of_account(account_id=account_id, window=window)
        return Response([journal.reset_view(reset, epochs).model_dump(mode="json") for reset in resets])


class AccountResetView(APIView):
    def post(self, request: Request) -> Response:
        query = parse_query(AccountQuery, request)
        reset = services.account_reset(user_id=user_id_of(request), account_id=query.accountId)
        epochs = journal.account_epochs(account_id=reset.account_id)
        return Response(journal.reset_view(reset, epochs).model_dump(mode="json"))
