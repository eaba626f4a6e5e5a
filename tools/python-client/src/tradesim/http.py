"""The HTTP half of the protocol (docs/protocol.md section 1) over the standard library's urllib,
run in a thread so the event loop never blocks on it."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tradesim.errors import ApiError


def _call(
    base_url: str, method: str, path: str, body: Any, token: str | None, timeout: float, content_type: str
) -> Any:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url.rstrip('/')}{path}", data=data, method=method)
    request.add_header("Content-Type", content_type)
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            if not response.headers.get_content_type().endswith("json"):
                return raw.decode(response.headers.get_content_charset() or "utf-8")  # a page (a report's HTML)
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {}
        if not isinstance(payload, dict) or "code" not in payload:
            payload = {"type": "error", "code": "http_error", "message": f"HTTP {error.code}", "requestId": None}
        retry = error.headers.get("Retry-After")
        if retry and retry.isdigit() and "retryAfterMs" not in payload:
            payload["retryAfterMs"] = int(retry) * 1000
        payload.setdefault("timestamp", int(time.time() * 1000))
        raise ApiError(error.code, payload) from None


async def api(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    timeout: float = 10,
    content_type: str = "application/json",
) -> Any:
    """One call: a JSON body (or `bytes` sent as they are, of `content_type`); the decoded answer (a page's
    text when it is not JSON), or
    ApiError with the error body and status (OSError when the server cannot be reached)."""
    return await asyncio.to_thread(_call, base_url, method, path, body, token, timeout, content_type)


async def obtain_token(base_url: str, username: str, password: str, device_id: str | None = None) -> dict[str, Any]:
    """POST /api/auth/token/: `{token, deviceId, expiresAt}`."""
    body: dict[str, Any] = {"username": username, "password": password}
    if device_id:
        body["deviceId"] = device_id
    answer: dict[str, Any] = await api(base_url, "POST", "/api/auth/token/", body)
    return answer


async def obtain_ticket(base_url: str, token: str) -> dict[str, Any]:
    """POST /api/auth/ticket/: `{ticket, deviceId, expiresAt}`, good for one socket."""
    answer: dict[str, Any] = await api(base_url, "POST", "/api/auth/ticket/", token=token)
    return answer
