"""The console's book panels in a real browser (Debian's chromium, driven by Playwright) against a
live daphne: bid and ask on the price board, whose rows pick the ticket's symbol; a depth ladder of
that symbol, whose rungs put their price in the ticket; and a candle chart that grows as the 1 s
bars close."""

from __future__ import annotations

import re

from tests.support.browser import log_in_to_console
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

ARTIFACTS = ROOT / "test-artifacts"
TIMES = " \u00d7 "  # the board shows "price x size"


def test_the_console_shows_bid_and_ask_a_depth_ladder_and_candles(make_server: ServerFactory, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(
        MARKET_TICK_MS="200", SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500", **RELAXED_LOGIN_THROTTLE
    )
    log_in_to_console(page, server.http)
    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)

    row = page.locator('#prices tr[data-symbol="MSFT"]')
    expect(row.locator("td.bid")).to_have_text(re.compile(rf"^[\d.,]+{TIMES}[\d.,]+$"), timeout=10_000)
    # Both cells in one script: two reads could straddle a tick (every 200 ms) and pair different books.
    cells = row.evaluate("r => [r.querySelector('td.bid').textContent, r.querySelector('td.ask').textContent]")
    bid, ask = (float(text.split(TIMES)[0].replace(",", "")) for text in cells)
    assert 0 < bid < ask

    row.click()
    expect(page.locator("#ticket-symbol")).to_have_value("MSFT")
    expect(page.locator("#book-symbol")).to_have_text("MSFT")
    expect(page.locator("#ladder tbody tr.ask")).to_have_count(10, timeout=10_000)
    expect(page.locator("#ladder tbody tr.bid")).to_have_count(10)
    prices = [float(text.replace(",", "")) for text in page.locator("#ladder tbody td.price").all_inner_texts()]
    assert prices == sorted(prices, reverse=True)  # asks above bids, the spread in the middle
    expect(page.locator("#book-spread")).to_have_text(re.compile(r"^spread [\d.]+$"))

    # A rung of the ladder puts its price in the ticket's limit price.
    page.select_option("#ticket [name=orderType]", "limit")
    # Found, clicked and read in one script: the ladder is redrawn with every tick (every 200 ms), and
    # a locator's evaluate finds the row first and runs the script later, when it may be detached.
    rung = page.evaluate(
        "() => { const r = document.querySelector('#ladder tbody tr.bid'); r.click(); return r.dataset.price; }"
    )
    expect(page.locator("#ticket [name=limitPrice]")).to_have_value(rung)

    # 1 s bars: the open one at once, then closed ones as seconds pass.
    page.wait_for_function("Number(document.querySelector('#candle-chart').dataset.bars) >= 3", timeout=15_000)
    assert page.locator("#candle-chart svg.candles g.candle").count() >= 3

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-book.png"), full_page=True)
    server.stop()
