"""The console's performance tab in a real browser (Debian's chromium) against daphne: the equity
curve, the figures (the REST API's own numbers), a journal download, and the account reset."""

from __future__ import annotations

import contextlib
import csv
import time
from pathlib import Path

import pytest

from tests.support.browser import log_in_to_console
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

ARTIFACTS = ROOT / "test-artifacts"
FIGURES = ("realizedPnl", "fees", "roundTrips", "maxDrawdown", "epoch")
# True once every figure the panel shows is the API's (to a millionth, as pytest.approx).
PANEL_SHOWS = """wanted => Object.entries(wanted).every(([name, value]) => {
  const shown = document.querySelector(`#figures dd[data-figure="${name}"]`);
  return shown !== null && Math.abs(Number(shown.dataset.value) - value) <= 1e-6 * Math.max(1, Math.abs(value));
})"""


def test_the_console_charts_equity_shows_the_figures_downloads_fills_and_resets(
    make_server: ServerFactory, browser_page, tmp_path: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(
        MARKET_TICK_MS="200",
        EQUITY_SAMPLE_INTERVAL_S="1",
        SIMULATOR_LEASE_TTL_MS="2000",
        SIMULATOR_LEASE_RENEW_MS="500",
        **RELAXED_LOGIN_THROTTLE,
    )
    log_in_to_console(page, server.http)
    # The performance tab, beside the orders: a click chooses a tab, and so do the arrow keys.
    page.click("#tab-orders")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-journal")).to_be_focused()
    expect(page.locator("#tab-journal")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-orders")).to_have_attribute("tabindex", "-1")  # one tab in the Tab order
    expect(page.locator("#journal")).to_be_visible()
    expect(page.locator("#orders")).to_be_hidden()
    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    expect(page.locator('#prices tr[data-symbol="AAPL"] td.price')).to_be_visible(timeout=10_000)

    page.select_option("#ticket-symbol", "AAPL")
    page.fill("#ticket [name=quantity]", "2")
    page.click("#ticket button")  # buy 2
    expect(page.locator('#positions tr[data-symbol="AAPL"] td.quantity')).to_have_text("2", timeout=10_000)
    page.select_option("#ticket [name=side]", "sell")
    page.click("#ticket button")  # sell 2: one round trip
    expect(page.locator('#positions tr[data-symbol="AAPL"] td.quantity')).to_have_text("0", timeout=10_000)

    roundtrips = page.locator('#figures dd[data-figure="roundTrips"]')
    expect(roundtrips).to_have_text("1", timeout=10_000)
    page.click("#journal-refresh")
    page.wait_for_function("Number(document.querySelector('#equity-curve').dataset.points) >= 2", timeout=15_000)
    assert page.locator("#equity-curve polyline").count() == 1

    # The panel shows the REST API's numbers. The equity samples of the open position may still be
    # landing (one a second, later on a loaded machine), moving the drawdown: read the API, refresh
    # the panel, until both show the same.
    token = page.evaluate("window.connectionManager.token")
    deadline = time.monotonic() + 30
    while True:
        status, figures = server.request("GET", "/api/market/journal/performance/", token=token)
        assert status == 200
        wanted = {name: figures[name] for name in FIGURES}
        page.click("#journal-refresh")
        with contextlib.suppress(PlaywrightTimeoutError):
            page.wait_for_function(PANEL_SHOWS, arg=wanted, timeout=5_000)
            break
        if time.monotonic() > deadline:
            break
    for name in FIGURES:
        shown = page.locator(f'#figures dd[data-figure="{name}"]').get_attribute("data-value")
        assert float(shown or "nan") == pytest.approx(figures[name]), name

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#journal").screenshot(path=str(ARTIFACTS / "console-journal.png"))
    with page.expect_download() as download_info:
        page.click('#journal [data-download="fills"]')
    saved = tmp_path / "fills.csv"
    download_info.value.save_as(saved)
    rows = list(csv.DictReader(saved.open()))
    _, fills = server.request("GET", "/api/market/journal/fills/", token=token)
    assert [r["fill_id"] for r in rows] == [f["fillId"] for f in fills] and len(rows) == 2

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#reset-account")  # refused while the simulator runs
    expect(page.locator("#journal-result")).to_contain_text("account_in_use", timeout=10_000)
    page.click("#stop-sim")
    # The stop is a write to the embedded SQLite, which waits out another thread's write lock (up to
    # its 20 s timeout): once in a CI run of the whole suite it took over 10 s (usually 30 ms).
    expect(page.locator("#sim-status")).to_have_text("stopped", timeout=30_000)
    page.click("#reset-account")
    expect(page.locator("#journal-result")).to_contain_text("Account reset (epoch 1)", timeout=10_000)
    expect(page.locator('#figures dd[data-figure="epoch"]')).to_have_text("1", timeout=10_000)
    expect(page.locator('#figures dd[data-figure="roundTrips"]')).to_have_text("0")
    expect(page.locator("#cash")).to_have_text("100,000.00", timeout=10_000)
    page.select_option("#journal-range", "all")
    expect(roundtrips).to_have_text("1", timeout=10_000)
    server.stop()
