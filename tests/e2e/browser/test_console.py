"""The trading console in a real browser (Debian's chromium, driven by Playwright) against
a live daphne: log in, trade, survive a server restart, stop when the device is invalidated."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.support.browser import log_in_to_console
from tests.support.liveserver import DaphneServer
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory


def restart(server: DaphneServer, directory: Path) -> tuple[DaphneServer, float]:
    """SIGTERM the server, start a new process on the same port; returns it and when it was ready."""
    server.stop()
    replacement = DaphneServer(env=server.env, port=server.port).start(directory)
    return replacement, time.monotonic()


def test_the_console_trades_survives_a_restart_and_stops_on_invalidation(
    make_server: ServerFactory, browser_page, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(
        MARKET_TICK_MS="200", SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500", **RELAXED_LOGIN_THROTTLE
    )
    socket_urls: list[str] = []
    page.on("websocket", lambda ws: socket_urls.append(ws.url))
    log_in_to_console(page, server.http)
    session_id = page.locator("#session-id").inner_text()

    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    aapl = page.locator('#prices tr[data-symbol="AAPL"] td.price')
    expect(aapl).to_be_visible(timeout=10_000)
    first_price = aapl.inner_text()
    page.wait_for_function(
        "p => document.querySelector('#prices tr[data-symbol=\"AAPL\"] td.price').textContent !== p",
        arg=first_price,
        timeout=10_000,
    )

    page.select_option("#ticket-symbol", "AAPL")
    page.fill("#ticket [name=quantity]", "2")
    page.click("#ticket button")
    expect(page.locator('#positions tr[data-symbol="AAPL"] td.quantity')).to_have_text("2", timeout=10_000)
    expect(page.locator("#rtt")).to_have_text(re.compile(r"\d+ ms"), timeout=20_000)  # a measured round trip

    server, ready_at = restart(server, tmp_path)
    expect(page.locator("#conn-state")).to_have_text("open", timeout=30_000)
    reconnect_s = time.monotonic() - ready_at
    print(f"\nthe page was open again {reconnect_s:.2f} s after the restarted server was ready")
    assert page.locator("#session-id").inner_text() == session_id  # the same session, resumed
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    expect(page.locator('#positions tr[data-symbol="AAPL"] td.quantity')).to_have_text("2", timeout=10_000)

    token = page.evaluate("window.connectionManager.token")
    # Every socket (the first and the one after the restart) opened with a single-use ticket.
    assert len(socket_urls) >= 2 and all("ticket=" in url and token not in url for url in socket_urls), socket_urls
    device_id = page.evaluate("window.connectionManager.deviceId")
    status, _ = server.request("POST", f"/api/devices/{device_id}/invalidate/", {"reason": "lost phone"}, token=token)
    assert status == 200
    expect(page.locator("#ended")).to_be_visible(timeout=10_000)
    expect(page.locator("#ended")).to_have_attribute("data-reason", "device_rejected")
    expect(page.locator("#conn-state")).to_have_text("closed")
    time.sleep(2)
    expect(page.locator("#conn-state")).to_have_text("closed")  # and it does not come back
    server.stop()
