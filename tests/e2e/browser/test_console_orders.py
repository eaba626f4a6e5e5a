"""The console's order ticket and orders in a real browser (Debian's chromium, driven by Playwright)
against a live daphne: start with a profile, place a stop-limit from the one ticket (which shows the
fields each type and class takes), see it in the orders table with its type, replace it, have a
bracket refused, cancel the order and keep it among the done ones."""

from __future__ import annotations

from tests.support.browser import log_in_to_console
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

ARTIFACTS = ROOT / "test-artifacts"


def test_the_console_places_replaces_and_cancels_the_exchanges_order_types(
    make_server: ServerFactory, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(
        MARKET_TICK_MS="200", SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500", **RELAXED_LOGIN_THROTTLE
    )
    log_in_to_console(page, server.http)
    page.select_option("#start-profile", "harsh")
    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    expect(page.locator("#sim-profile")).to_have_text("harsh", timeout=10_000)

    ticket = page.locator("#ticket")
    expect(ticket.locator("[name=symbol] option[value=MSFT]")).to_have_count(1, timeout=10_000)
    # A market order takes no prices: the ticket shows none.
    for name in ("limitPrice", "stopPrice", "trail", "takeProfit", "stopLoss"):
        expect(ticket.locator(f"[name={name}]")).to_be_hidden()
    ticket.locator("[name=symbol]").select_option("MSFT")
    ticket.locator("[name=orderType]").select_option("stop_limit")
    expect(ticket.locator("[name=trail]")).to_be_hidden()
    ticket.locator("[name=timeInForce]").select_option("day")
    ticket.locator("[name=stopPrice]").fill("9000")
    ticket.locator("[name=limitPrice]").fill("9001")
    ticket.locator("button[type=submit]").click()
    expect(page.locator("#ticket-result")).to_contain_text("new", timeout=10_000)
    row = page.locator("#orders tbody tr.open").first
    expect(row).to_contain_text("stop limit · limit 9,001 · stop 9,000", timeout=10_000)
    expect(row).to_contain_text("day")
    expect(page.locator("#open-count")).to_have_text("(1 open)")

    row.get_by_role("button", name="Replace").click()
    row.locator("form.replace [name=quantity]").fill("3")
    row.locator("form.replace button[type=submit]").click()
    expect(page.locator("#ticket-result")).to_contain_text("replaced", timeout=10_000)
    expect(page.locator("#orders tbody tr.open").first.locator("td").nth(6)).to_have_text("3", timeout=10_000)

    # A bracket with exits that do not bracket it is refused with its code.
    ticket.locator("[name=orderType]").select_option("market")
    ticket.locator("[name=orderClass]").select_option("bracket")
    ticket.locator("[name=takeProfit]").fill("1")
    ticket.locator("[name=stopLoss]").fill("2")
    ticket.locator("button[type=submit]").click()
    expect(page.locator("#ticket-result")).to_contain_text("invalid_bracket", timeout=10_000)

    page.locator("#orders tbody tr.open").first.get_by_role("button", name="Cancel").click()
    expect(page.locator("#orders tbody tr.open")).to_have_count(0, timeout=10_000)
    canceled = page.locator("#orders tbody tr.done")  # the same table keeps the done orders
    expect(canceled).to_have_count(1)
    expect(canceled.locator("td.order-status")).to_have_text("canceled")
    expect(canceled.get_by_role("button")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-orders.png"), full_page=True)
    server.stop()
