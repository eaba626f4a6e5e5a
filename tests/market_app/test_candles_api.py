"""GET /api/market/candles/: a symbol's closed bars of one interval, in a time range, oldest first."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from market_app.models import Candle
from tests.support.factories import issue_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_instruments")]


@pytest.fixture
def client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token().token}")
    return client


@pytest.fixture
def bars() -> None:
    for n in range(10):
        price = Decimal(100 + n)
        Candle.objects.create(
            symbol="AAPL",
            interval="1m",
            start_ms=n * 60_000,
            open=price,
            high=price + 1,
            low=price - 1,
            close=price,
            volume=10 * n,
        )
    Candle.objects.create(symbol="AAPL", interval="1s", start_ms=0, open=1, high=1, low=1, close=1, volume=1)
    Candle.objects.create(symbol="MSFT", interval="1m", start_ms=0, open=1, high=1, low=1, close=1, volume=1)


@pytest.mark.usefixtures("bars")
def test_bars_come_oldest_first_and_a_range_with_a_limit_gives_its_newest_bars(client: APIClient) -> None:
    response = client.get("/api/market/candles/", {"symbol": "AAPL", "interval": "1m"})
    assert response.status_code == 200
    body = response.json()
    assert [bar["start"] for bar in body] == [n * 60_000 for n in range(10)]
    assert body[3] == {
        "interval": "1m",
        "start": 180_000,
        "open": 103.0,
        "high": 104.0,
        "low": 102.0,
        "close": 103.0,
        "volume": 30,
    }
    ranged = client.get(
        "/api/market/candles/", {"symbol": "AAPL", "interval": "1m", "from": 120_000, "to": 480_000, "limit": 3}
    ).json()
    assert [bar["start"] for bar in ranged] == [300_000, 360_000, 420_000]


def test_a_symbol_without_bars_has_an_empty_list(client: APIClient) -> None:
    response = client.get("/api/market/candles/", {"symbol": "NVDA", "interval": "5m"})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"interval": "1m"}, "symbol"),
        ({"symbol": "AAPL"}, "interval"),
        ({"symbol": "AAPL", "interval": "2m"}, "interval"),
        ({"symbol": "AAPL", "interval": "1m", "limit": "0"}, "limit"),
        ({"symbol": "AAPL", "interval": "1m", "limit": "1001"}, "limit"),
        ({"symbol": "AAPL", "interval": "1m", "from": "yesterday"}, "from"),
        ({"symbol": "AAPL", "interval": "1m", "from": "-5"}, "from"),
        ({"symbol": "AAPL", "interval": "1m", "to": "253402300800000"}, "to"),
        ({"symbol": "AAPL", "interval": "1m", "limit": " 5"}, "limit"),
        ({"symbol": "aapl!", "interval": "1m"}, "symbol"),
    ],
)
def test_a_bad_query_is_the_standard_error_naming_the_field(client: APIClient, query: dict, field: str) -> None:
    response = client.get("/api/market/candles/", query)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["code"] == "invalid_request"
    assert [detail["field"] for detail in body["details"]] == [field]


def test_a_window_that_ends_where_it_starts_is_empty(client: APIClient) -> None:
    # The document cannot say `to` > `from`, so the server does not demand it: [5, 5) holds no bar.
    response = client.get("/api/market/candles/", {"symbol": "AAPL", "interval": "1m", "from": 5, "to": 5})
    assert response.status_code == 200 and response.json() == []


def test_an_unknown_symbol_is_not_found(client: APIClient) -> None:
    response = client.get("/api/market/candles/", {"symbol": "NOPE", "interval": "1m"})
    assert response.status_code == 404 and response.json()["code"] == "unknown_symbol"


def test_candles_need_a_token() -> None:
    response = APIClient().get("/api/market/candles/", {"symbol": "AAPL", "interval": "1m"})
    assert response.status_code == 401
