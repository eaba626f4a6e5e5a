"""The console's accounts tab in a real browser (Debian's chromium) against daphne: an account opened
there, chosen beside Start, trades (the header names it), cannot be closed while trading, and is
closed once stopped, the default account current again."""

from __future__ import annotations

from tests.support.browser import log_in_to_console
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def test_an_account_opened_in_the_console_is_traded_and_then_closed(make_server: ServerFactory, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(MARKET_TICK_MS="200", **RELAXED_LOGIN_THROTTLE)
    log_in_to_console(page, server.http)
    expect(page.locator("#account-name")).to_have_text("Main", timeout=10_000)
    page.click("#tab-accounts")
    expect(page.locator("#accounts tbody tr")).to_have_count(1, timeout=10_000)

    page.fill("#account-form [name=name]", "Swing")
    page.select_option("#account-form [name=accountType]", "margin")
    page.fill("#account-form [name=startingCash]", "20000")
    page.select_option("#account-form [name=profile]", "ideal")
    page.click("#account-form button")
    expect(page.locator("#accounts-result")).to_have_text("Swing opened.", timeout=10_000)
    swing = page.locator("#accounts tbody tr[data-name=Swing]")
    expect(swing).to_contain_text("20,000.00")
    expect(swing).to_contain_text("ideal")
    expect(swing).to_contain_text("margin")

    page.select_option("#start-account", label="Swing")
    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    expect(page.locator("#account-name")).to_have_text("Swing", timeout=10_000)
    expect(swing).to_contain_text("current", timeout=10_000)
    page.select_option("#ticket-symbol", "MSFT")
    page.select_option("#ticket [name=side]", "sell")  # a short: the account is a margin account
    page.fill("#ticket [name=quantity]", "1")
    page.click("#ticket button[type=submit]")
    expect(page.locator("#positions tbody tr[data-symbol=MSFT] .quantity")).to_have_text("-1", timeout=10_000)

    swing.locator("[data-action=close]").click()
    expect(page.locator("#accounts-result")).to_contain_text("account_in_use", timeout=10_000)
    page.click("#stop-sim")
    expect(page.locator("#sim-status")).to_have_text("stopped", timeout=10_000)
    swing.locator("[data-action=close]").click()
    expect(page.locator("#accounts-result")).to_have_text("Swing closed.", timeout=10_000)
    expect(page.locator("#accounts tbody tr")).to_have_count(1)
    expect(page.locator("#account-name")).to_have_text("Main", timeout=10_000)
    expect(page.locator("#positions tbody tr")).to_have_count(0)
