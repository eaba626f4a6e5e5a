"""The OpenAPI document lists exactly the API's routes, with the models the views use."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver

from sessions_app.api.fallback import NOT_FOUND_ROUTE
from sessions_app.openapi import all_operations, openapi


def api_routes() -> set[str]:
    """Every route under /api/, in OpenAPI style (`<str:order_id>` -> `{orderId}`), less the JSON 404 for
    the rest."""

    def walk(patterns: list, prefix: str) -> set[str]:
        found: set[str] = set()
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                found |= walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/") and pattern.name != NOT_FOUND_ROUTE:
                found.add("/" + route)
        return found

    def camel(match: re.Match[str]) -> str:
        head, *rest = match.group(1).split("_")
        return "{" + head + "".join(part.title() for part in rest) + "}"

    return {re.sub(r"<(?:\w+:)?(\w+)>", camel, route) for route in walk(get_resolver().url_patterns, "")}


def test_every_api_route_is_documented_and_every_documented_path_exists() -> None:
    assert {operation.path for operation in all_operations()} == api_routes()


def test_each_operation_names_its_body_response_and_error_codes() -> None:
    document = openapi("test")
    place = document["paths"]["/api/market/orders/"]["post"]
    assert place["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderTicket"}
    assert "`insufficient_cash`" in place["responses"]["409"]["description"]
    assert place["security"] == [{"bearer": []}]
    login = document["paths"]["/api/auth/token/"]["post"]
    assert "security" not in login and "201" in login["responses"]
    for name in ("OrderTicket", "UserOrder", "ErrorMessage", "TokenResponse"):
        assert name in document["components"]["schemas"]
