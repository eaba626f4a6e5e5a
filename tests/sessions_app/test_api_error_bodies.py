"""Every answer under /api/ is JSON, with DEBUG on as off: unknown URLs, methods a URL does not take,
bodies that are not JSON, malformed path parameters (found by schemathesis, issue 24)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from tests.support.factories import issue_token

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with override_settings(DEBUG=request.param):
        # raise_request_exception off: a crash is answered as a client would see it, not re-raised.
        yield Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {issue_token().token}")


def error_of(response: object, status: int) -> dict:
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/json"  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == "error" and set(body) >= {"code", "message", "requestId", "timestamp"}
    return body


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("path", ["/api/nope/", "/api/market/nope", "/api/market/orders", "/api/"])
def test_a_url_no_route_matches_is_a_json_404(client: Client, method: str, path: str) -> None:
    assert error_of(getattr(client, method)(path), 404)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/market/orders/0/cancel/", "/api/market/orders/not-a-uuid/replace/"])
def test_a_malformed_order_id_is_a_400_naming_it(client: Client, path: str) -> None:
    body = error_of(client.post(path, {"quantity": 1}, content_type="application/json"), 400)
    assert body["code"] == "invalid_request" and [d["field"] for d in body["details"]] == ["orderId"]


def test_an_unknown_well_formed_order_id_is_a_404(client: Client) -> None:
    response = client.post("/api/market/orders/00000000-0000-0000-0000-000000000000/cancel/")
    assert error_of(response, 404)["code"] == "order_not_found"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/docs/socket/"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "QUERY"])
def test_a_page_answers_another_method_with_a_json_405(client: Client, path: str, method: str) -> None:
    response = client.generic(method, path)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_an_api_view_answers_an_undeclared_method_with_a_json_405(client: Client) -> None:
    response = client.generic("QUERY", "/api/market/orders/")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_a_body_that_is_not_json_is_a_415(client: Client) -> None:
    response = client.post("/api/market/orders/", "symbol=SPY", content_type="application/x-www-form-urlencoded")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_an_accept_header_with_nothing_json_is_a_406(client: Client) -> None:
    response = client.get("/api/market/orders/", HTTP_ACCEPT="text/html")
    assert error_of(response, 406)["code"] == "not_acceptable"


def test_an_unknown_order_status_filter_is_a_400_naming_it(client: Client) -> None:
    body = error_of(client.get("/api/market/orders/?status="), 400)
    assert [d["field"] for d in body["details"]] == ["status"]


def test_a_crash_in_an_api_view_is_a_json_500_and_is_logged(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(**_: object) -> None:
        raise OverflowError("a bug")

    monkeypatch.setattr("market_app.api.reports.run_report", crash)
    response = client.get("/api/market/simulators/00000000-0000-0000-0000-000000000000/report/")
    assert error_of(response, 500)["code"] == "internal_error"
    assert "a bug" not in response.content.decode()  # the details stay in the log
    assert any(record.exc_info and record.exc_info[0] is OverflowError for record in caplog.records)
