"""The docs pages in a real browser (Debian's chromium, Playwright) against a live daphne: Swagger UI
renders every operation and runs a request, the protocol page lists every message, and nothing the
pages load comes from anywhere but the service."""

from __future__ import annotations

import json

from sessions_app.openapi import all_operations
from sessions_app.realtime.export import client_messages, error_code_rows, server_messages
from sessions_app.realtime.message_base import message_type
from tests.support.liveserver import ROOT, DaphneServer

ARTIFACTS = ROOT / "test-artifacts"


def record_requests(page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def assert_only_the_service(urls: list[str], server: DaphneServer) -> None:
    assert urls, "the page made no request at all"
    elsewhere = [url for url in urls if not url.startswith(server.http + "/")]
    assert not elsewhere, elsewhere


def test_swagger_ui_renders_every_operation_and_tries_a_login_from_the_service_alone(
    shared_server: DaphneServer, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    urls = record_requests(page)
    page.goto(f"{shared_server.http}/api/docs/")
    token = page.locator('.opblock-summary-path[data-path="/api/auth/token/"]')
    expect(token).to_be_visible(timeout=15_000)
    shown = set(page.locator(".opblock-summary-path").evaluate_all("nodes => nodes.map(n => n.dataset.path)"))
    assert shown == {operation.path for operation in all_operations()}

    # Trying a request: the login operation, with the demo user, answers 201 and a token.
    login = page.locator(".opblock-post").filter(has=token)
    login.locator(".opblock-summary").click()
    login.get_by_role("button", name="Try it out").click()
    login.locator("textarea.body-param__text").fill(json.dumps({"username": "demo", "password": "demo-password"}))
    login.get_by_role("button", name="Execute").click()
    expect(login.locator(".live-responses-table tbody .response-col_status")).to_have_text("201", timeout=10_000)
    page.wait_for_load_state("networkidle")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-swagger.png"), full_page=True)
    assert any(url.endswith("/api/schema/") for url in urls)
    assert any("swagger-ui-bundle" in url for url in urls)
    assert_only_the_service(urls, shared_server)


def test_the_protocol_page_lists_every_registered_message_by_direction_from_the_service_alone(
    shared_server: DaphneServer, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    urls = record_requests(page)
    page.goto(f"{shared_server.http}/api/docs/socket/")
    page.wait_for_load_state("networkidle")

    def listed(section: str) -> list[str]:
        return page.locator(f"#{section} .message > h3 > code").all_inner_texts()

    assert listed("client") == [message_type(m) for m in client_messages()]
    assert sorted(listed("server")) == sorted(message_type(m) for m in server_messages())
    codes = page.locator("#error-codes + p + table tbody td:first-child code").all_inner_texts()
    assert codes == [row.code for row in error_code_rows()]
    for model in client_messages():
        if model.reply is not None:  # each request names its reply
            name, reply = message_type(model), message_type(model.reply)
            expect(page.locator(f'#message-{name} .facts a[href="#message-{reply}"]')).to_have_count(1)

    # The page's own link to the Swagger UI works.
    page.locator(".docs-nav").get_by_role("link", name="HTTP API").click()
    expect(page.locator('.opblock-summary-path[data-path="/api/auth/token/"]')).to_be_visible(timeout=15_000)
    page.goto(f"{shared_server.http}/api/docs/socket/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-socket.png"), full_page=True)
    assert_only_the_service(urls, shared_server)
