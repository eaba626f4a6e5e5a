"""The account's journal and figures (market_app.journal, market_app.performance, market_app.api.journal)
against a small scenario computed by hand: the same numbers from the selector, the JSON and the CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from market_app import journal, performance, services
from market_app.accounting import FillIntent
from market_app.journal import Window
from market_app.models import Account, EquitySample, Fill
from simulator_app.models import Simulator, SimulatorStatus
from tests.market_app.test_trading_services import Trader, apply, place, set_prices, trader
from tests.support.factories import issue_token, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal
# Equity samples (hand-picked): the peak 100,500 falls to 99,000, a drawdown of 1,500 = 1.492537 %.
EQUITY = ["100000", "100500", "99800", "100200", "99000", "100100"]


def fill(who: Trader, symbol: str, side: str, quantity: float, price: str, tick: int) -> None:
    order = place(who.user_id, symbol=symbol, side=side, quantity=quantity)
    assert apply(who, FillIntent(order.id, D(repr(quantity)), D(price), tick)) is not None


def scenario() -> Trader:
    """Two round trips and an open position, a fee of 1 on every fill:

    AAPL buy 10 @ 100, sell 4 @ 110 (+40), sell 6 @ 95 (-30): a trip of +10 - 3 fees, won.
    MSFT buy 5 @ 200, sell 5 @ 190 (-50): a trip of -50 - 2 fees, lost.
    AAPL buy 2 @ 100, still held; AAPL last at 120: unrealized +40.
    Realized -40 before fees, -46 after (as the positions count it), fees 6, net -6; two round trips, one won.
    """
    who = trader()
    set_prices({"AAPL": "100", "MSFT": "200"})
    fill(who, "AAPL", "buy", 10, "100", 1)
    fill(who, "AAPL", "sell", 4, "110", 2)
    fill(who, "AAPL", "sell", 6, "95", 3)
    fill(who, "MSFT", "buy", 5, "200", 4)
    fill(who, "MSFT", "sell", 5, "190", 5)
    fill(who, "AAPL", "buy", 2, "100", 6)
    Fill.objects.filter(user_id=who.user_id).update(fee=D(1))  # the exchange's fee models set it; not this app
    set_prices({"AAPL": "120", "MSFT": "190"}, seq=7)
    account = Account.objects.get(user_id=who.user_id)
    start = timezone.now() - timedelta(minutes=10)
    EquitySample.objects.bulk_create(
        EquitySample(
            account=account,
            at=start + timedelta(seconds=10 * i),
            tick_seq=i,
            equity=D(e),
            cash=D(e),
            positions_value=D(0),
        )
        for i, e in enumerate(EQUITY)
    )
    return who


def figures(who: Trader, **window: object) -> performance.Performance:
    return performance.account_performance(
        account_id=Account.objects.get(user_id=who.user_id).pk,
        window=Window(window.get("start"), window.get("end", timezone.now())),  # type: ignore[arg-type]
    )


def client_of(user_id: int) -> APIClient:
    from django.contrib.auth import get_user_model

    client = APIClient()
    token = issue_token(get_user_model().objects.get(pk=user_id)).token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def csv_rows(response: object) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body.decode())))


def body_json(response: object) -> object:
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return json.loads(body)


# --- The figures ------------------------------------------------------------------------------------


def test_the_figures_of_the_scenario_are_the_hand_computed_ones() -> None:
    who = scenario()
    result = figures(who)
    assert (result.realized_pnl, result.unrealized_pnl, result.fees, result.net_pnl) == (D(-46), D(40), D(6), D(-6))
    assert (result.round_trips, result.won, result.win_rate) == (2, 1, D("0.5"))
    assert (result.max_drawdown, result.max_drawdown_ratio) == (D(1500), D("0.01492537"))
    assert (result.orders, result.fills, result.samples, result.epoch, result.resets) == (6, 6, 6, 0, 0)
    assert (result.first_equity, result.last_equity) == (D(100000), D(100100))


def test_a_partial_close_adds_to_its_round_trip_and_is_not_counted_apart() -> None:
    who = trader()
    set_prices({"AAPL": "100"})
    fill(who, "AAPL", "buy", 10, "100", 1)
    fill(who, "AAPL", "sell", 4, "90", 2)  # -40: the position is still open
    assert (figures(who).round_trips, figures(who).win_rate) == (0, None)
    fill(who, "AAPL", "sell", 6, "110", 3)  # +60: flat, one trip of +20
    result = figures(who)
    assert (result.round_trips, result.won, result.realized_pnl) == (1, 1, D(20))


def test_a_window_counts_the_round_trips_that_close_inside_it_with_their_whole_profit() -> None:
    who = scenario()
    fills = list(Fill.objects.filter(user_id=who.user_id).order_by("created_at"))
    # From the third fill (AAPL's closing sell) on: the AAPL trip closes inside, the first two fills are outside.
    result = figures(who, start=fills[2].created_at)
    assert (result.fills, result.round_trips, result.won) == (4, 2, 1)
    # -30 and -50 less the four fees inside: the +40 of the partial close came before the window.
    assert result.realized_pnl == D(-84)
    assert result.fees == D(4)


def test_a_reset_starts_a_new_epoch_and_the_whole_history_keeps_the_old_one() -> None:
    who = scenario()
    Simulator.objects.filter(pk=who.simulator_id).update(status=SimulatorStatus.STOPPED)
    services.account_reset(user_id=who.user_id)
    current = figures(
        who,
        start=journal.default_window(
            account_id=Account.objects.get(user_id=who.user_id).pk, start=None, end=None
        ).start,
    )
    assert (current.realized_pnl, current.unrealized_pnl, current.round_trips, current.fills) == (0, 0, 0, 0)
    assert (current.epoch, current.samples, current.max_drawdown, current.last_equity) == (1, 1, 0, D(100_000))
    everything = figures(who)
    assert (everything.realized_pnl, everything.round_trips, everything.won, everything.resets) == (D(-46), 2, 1, 1)
    assert everything.unrealized_pnl == 0  # the AAPL still held was cleared by the reset
    assert everything.max_drawdown == D(1500)


# --- REST: JSON and CSV, the same numbers -----------------------------------------------------------


def test_the_performance_endpoint_answers_the_figures_in_json_and_csv_alike() -> None:
    who = scenario()
    client = client_of(who.user_id)
    data = body_json(client.get("/api/market/journal/performance/"))
    assert isinstance(data, dict)
    assert (data["realizedPnl"], data["unrealizedPnl"], data["fees"], data["netPnl"]) == (-46, 40, 6, -6)
    assert (data["roundTrips"], data["roundTripsWon"], data["winRate"]) == (2, 1, 0.5)
    assert (data["maxDrawdown"], data["maxDrawdownRatio"]) == (1500, 0.01492537)
    assert "start" not in data  # no reset yet: from the first record
    response = client.get("/api/market/journal/performance/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    (row,) = csv_rows(response)
    assert list(row) == list(journal.PERFORMANCE_COLUMNS)
    pairs = {"realized_pnl": "realizedPnl", "unrealized_pnl": "unrealizedPnl", "fees": "fees", "net_pnl": "netPnl"}
    pairs |= {"max_drawdown": "maxDrawdown", "max_drawdown_ratio": "maxDrawdownRatio", "win_rate": "winRate"}
    for column, field in pairs.items():
        assert D(row[column]) == D(repr(data[field])), column
    assert (row["round_trips"], row["round_trips_won"], row["fills"]) == ("2", "1", "6")


def test_the_fills_journal_lists_the_window_oldest_first_in_json_and_csv() -> None:
    who = scenario()
    client = client_of(who.user_id)
    fills = body_json(client.get("/api/market/journal/fills/"))
    assert isinstance(fills, list)
    assert [(f["symbol"], f["side"], f["quantity"], f["price"], f["fee"]) for f in fills] == [
        ("AAPL", "buy", 10, 100, 1),
        ("AAPL", "sell", 4, 110, 1),
        ("AAPL", "sell", 6, 95, 1),
        ("MSFT", "buy", 5, 200, 1),
        ("MSFT", "sell", 5, 190, 1),
        ("AAPL", "buy", 2, 100, 1),
    ]
    assert [f["notional"] for f in fills] == [1000, 440, 570, 1000, 950, 200]
    assert {f["epoch"] for f in fills} == {0}
    rows = csv_rows(client.get("/api/market/journal/fills/", HTTP_ACCEPT="text/csv"))
    assert list(rows[0]) == list(journal.FILL_COLUMNS)
    assert [r["fill_id"] for r in rows] == [f["fillId"] for f in fills]
    assert [(r["price"], r["notional"], r["fee"]) for r in rows][:2] == [("100", "1000", "1"), ("110", "440", "1")]
    third = fills[2]["createdAt"]
    window = body_json(client.get(f"/api/market/journal/fills/?from={third}&to={fills[4]['createdAt']}"))
    assert [f["fillId"] for f in window] == [fills[2]["fillId"], fills[3]["fillId"]]  # type: ignore[index]


def test_the_orders_journal_takes_rfc_3339_times_and_shows_every_column_in_csv() -> None:
    who = scenario()
    client = client_of(who.user_id)
    orders = body_json(client.get("/api/market/journal/orders/?from=2000-01-01T00:00:00Z"))
    assert isinstance(orders, list) and len(orders) == 6
    assert all(o["status"] == "filled" and "limitPrice" not in o for o in orders)
    rows = csv_rows(client.get("/api/market/journal/orders/?format=csv&from=2000-01-01T01:00:00%2B01:00"))
    assert list(rows[0]) == list(journal.ORDER_COLUMNS)
    assert [r["order_id"] for r in rows] == [o["orderId"] for o in orders]
    assert rows[0]["created_at"].endswith("Z") and rows[0]["limit_price"] == "" and rows[0]["epoch"] == "0"
    assert body_json(client.get("/api/market/journal/orders/?to=2000-01-01T00:00:00Z&from=0")) == []


def test_a_journal_larger_than_a_page_streams_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    who = scenario()
    monkeypatch.setattr(journal, "PAGE_SIZE", 2)
    client = client_of(who.user_id)
    response = client.get("/api/market/journal/fills/")
    assert response.streaming
    assert len(body_json(response)) == 6  # type: ignore[arg-type]
    assert len(csv_rows(client.get("/api/market/journal/fills/?format=csv"))) == 6


def test_the_equity_curve_is_spread_over_at_most_the_points_asked_for() -> None:
    who = scenario()
    client = client_of(who.user_id)
    curve = body_json(client.get("/api/market/journal/equity/"))
    assert [p["equity"] for p in curve] == [float(e) for e in EQUITY]  # type: ignore[union-attr]
    three = body_json(client.get("/api/market/journal/equity/?points=3"))
    assert [p["equity"] for p in three] == [100000, 99800, 100100]  # type: ignore[union-attr]
    rows = csv_rows(client.get("/api/market/journal/equity/?format=csv&points=3"))  # CSV: every sample
    assert [r["equity"] for r in rows] == EQUITY and list(rows[0]) == list(journal.EQUITY_COLUMNS)


def test_the_journal_shows_only_the_callers_own_records() -> None:
    who = scenario()
    other = make_user()
    client = client_of(other.pk)
    assert body_json(client.get("/api/market/journal/fills/")) == []
    assert body_json(client.get("/api/market/journal/performance/"))["fills"] == 0  # type: ignore[index]
    assert Fill.objects.filter(user_id=who.user_id).count() == 6


@pytest.mark.parametrize(
    "path",
    [
        "/api/market/journal/orders/",
        "/api/market/journal/fills/",
        "/api/market/journal/equity/",
        "/api/market/journal/performance/",
        "/api/market/account/resets/",
    ],
)
def test_the_journal_needs_a_token(path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=99999999999999999", "from"),
        ("from=2000-01-01T00:00:00", "from"),  # RFC 3339 wants the offset: no guessing at the time zone
        ("to=2026-02-30T00:00:00Z", "to"),
        ("from=2000-01-01", "from"),
        ("format=xml", "format"),
        ("format=", "format"),
    ],
)
def test_bad_journal_parameters_get_an_invalid_request_body_naming_the_field(query: str, field: str) -> None:
    client = client_of(make_user().pk)
    for path in ("/api/market/journal/fills/", "/api/market/journal/performance/"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == "error" and body["code"] == "invalid_request"
        assert body["details"][0]["field"] == field


def test_a_window_whose_end_is_not_after_its_start_is_empty() -> None:
    who = scenario()
    client = client_of(who.user_id)
    window = "from=2100-01-02T00:00:00Z&to=2000-01-01T00:00:00Z"
    assert body_json(client.get(f"/api/market/journal/fills/?{window}")) == []
    figures = body_json(client.get(f"/api/market/journal/performance/?{window}"))
    assert isinstance(figures, dict) and figures["fills"] == 0 and figures["orders"] == 0


def test_times_beyond_the_calendar_s_ends_in_utc_are_taken_as_those_ends() -> None:
    who = scenario()
    client = client_of(who.user_id)
    # 0001-01-01T00:30+01:00 is in year 0 in UTC, 9999-12-31T23:30-01:00 in year 10000.
    window = "from=0001-01-01T00:30:00%2B01:00&to=9999-12-31T23:30:00-01:00"
    assert len(body_json(client.get(f"/api/market/journal/fills/?{window}"))) == 6  # type: ignore[arg-type]


def test_an_equity_curve_of_too_many_points_is_refused() -> None:
    response = client_of(make_user().pk).get("/api/market/journal/equity/?points=1")
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "points"


def test_times_with_an_offset_and_epoch_milliseconds_name_the_same_instant() -> None:
    who = scenario()
    client = client_of(who.user_id)
    fills = body_json(client.get("/api/market/journal/fills/"))
    second = fills[1]["createdAt"]  # type: ignore[index]
    iso_plus_two = (
        (timezone.datetime.fromtimestamp(second / 1000, timezone.get_fixed_timezone(120)))
        .isoformat(timespec="milliseconds")
        .replace("+", "%2B")
    )
    by_ms = body_json(client.get(f"/api/market/journal/fills/?from={second}"))
    by_iso = body_json(client.get(f"/api/market/journal/fills/?from={iso_plus_two}"))
    assert by_ms == by_iso
    # From the second fill on (the first too only if it fell in the same millisecond).
    assert [f["fillId"] for f in by_ms][-5:] == [f["fillId"] for f in fills[1:]]  # type: ignore[union-attr,index]


def test_the_openapi_document_offers_csv_besides_json_for_the_journal() -> None:
    from sessions_app.openapi import openapi

    paths = openapi("test")["paths"]
    for path in ("orders", "fills", "equity", "performance"):
        content = paths[f"/api/market/journal/{path}/"]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}
    reset = paths["/api/market/account/reset/"]["post"]["responses"]
    assert "account_in_use" in reset["409"]["description"]


async def test_under_asgi_the_journal_streams_from_an_async_iterator() -> None:
    import warnings

    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    who = await sync_to_async(scenario)()
    token = await sync_to_async(lambda: issue_token(Account.objects.get(user_id=who.user_id).user).token)()
    client = AsyncClient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns when it must read a sync iterator whole
        response = await client.get(
            "/api/market/journal/fills/?format=csv", headers={"Authorization": f"Bearer {token}"}
        )
        assert getattr(response, "is_async", False), response.content
        body = b"".join([chunk async for chunk in response.streaming_content])
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["price"] for r in rows] == ["100", "110", "95", "200", "190", "100"]
