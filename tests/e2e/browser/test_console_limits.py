"""The console's limits tab in a real browser (Debian's chromium) against daphne: it shows the
account's risk limits and the operator's caps, saves them with `set_risk_limits`, and the ticket then
shows an order beyond one refused with its code."""

from __future__ import annotations

from tests.support.browser import log_in_to_console
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def test_the_limits_tab_shows_the_caps_saves_limits_and_an_order_beyond_one_is_refused(
    make_server: ServerFactory, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(
        MARKET_TICK_MS="200",
        RISK_MAX_OPEN_ORDERS_CAP="20",
        SIMULATOR_LEASE_TTL_MS="2000",
        SIMULATOR_LEASE_RENEW_MS="500",
        **RELAXED_LOGIN_THROTTLE,
    )
    log_in_to_console(page, server.http)
    page.click("#tab-limits")
    expect(page.locator("#limits")).to_be_visible()
    page.wait_for_function("document.querySelector('#limits-form').dataset.loaded", timeout=10_000)
    expect(page.locator("#limits-form [name=maxOpenOrders]")).to_have_attribute("placeholder", "cap 20")
    expect(page.locator("#limits-form [name=maxOrderValue]")).to_have_attribute("placeholder", "none")

    page.fill("#limits-form [name=maxOrderValue]", "100")
    page.fill("#limits-form [name=maxOpenOrders]", "21")
    page.click("#limits-form button")
    expect(page.locator("#limits-result")).to_contain_text("limit_above_cap", timeout=10_000)
    page.fill("#limits-form [name=maxOpenOrders]", "5")
    page.click("#limits-form button")
    expect(page.locator("#limits-result")).to_contain_text("saved", timeout=10_000)
    log_in_to_console(page, server.http)  # a fresh page: the saved limits come from the server
    page.click("#tab-limits")
    expect(page.locator("#limits-form [name=maxOrderValue]")).to_have_value("100", timeout=10_000)
    expect(page.locator("#limits-form [name=maxOpenOrders]")).to_have_value("5")

    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    page.select_option("#ticket-symbol", "MSFT")
    page.fill("#ticket [name=quantity]", "1")
    page.click("#ticket button[type=submit]")
    expect(page.locator("#ticket-result")).to_contain_text("order_value_limit", timeout=10_000)
