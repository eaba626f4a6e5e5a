"""The console's own market in a real browser (Debian's chromium, driven by Playwright) against a live
daphne: start a replay of an uploaded dataset, see the clock bar at its first bar, step, seek, play it
at `max` to its end, and open its report (the figures and the self-contained page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.browser import log_in_to_console
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

ARTIFACTS = ROOT / "test-artifacts"
T0 = datetime(2024, 3, 4, tzinfo=UTC)


def daily_bars(count: int) -> str:
    lines = ["timestamp,symbol,open,high,low,close,volume"]
    for i in range(count):
        price = 50 + (i % 9) - (i % 4)
        lines.append(
            f"{(T0 + timedelta(days=i)).date().isoformat()},DLY,{price},{price + 1},{price - 1},{price + 0.5},900"
        )
    return "\n".join(lines) + "\n"


def test_the_console_replays_a_dataset_on_its_clock_and_shows_the_report(
    make_server: ServerFactory, browser_page
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    server = make_server(SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500", **RELAXED_LOGIN_THROTTLE)
    token = server.login("demo", "demo-password")["token"]
    status, stored = server.request(
        "POST",
        "/api/market/datasets/?name=daily",
        daily_bars(40).encode(),
        token=token,
        headers={"Content-Type": "text/csv"},
    )
    assert status == 201, stored
    log_in_to_console(page, server.http)

    page.select_option("#market-source", "replay")
    expect(page.locator(f"#market-dataset option[value='{stored['datasetId']}']")).to_have_count(1, timeout=10_000)
    page.select_option("#market-dataset", stored["datasetId"])
    page.fill("#market-seed", "7")
    page.click("#start-sim")  # the one Start, on the market chosen beside it
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    bar = page.locator("#clock-bar")
    expect(bar).to_be_visible(timeout=10_000)
    expect(page.locator("#clock-time")).to_have_text("2024-03-04 00:00:00", timeout=10_000)
    expect(page.locator("#clock-play")).to_have_text("Play")

    page.click("#clock-step-10")
    expect(page.locator("#clock-time")).to_have_text("2024-03-14 00:00:00", timeout=10_000)
    expect(page.locator("#clock-index")).to_contain_text("bar 11 of 40")
    page.fill("#clock-seek", "2024-03-20T00:00")
    page.click("#clock-seek-go")
    expect(page.locator("#clock-time")).to_have_text("2024-03-20 00:00:00", timeout=10_000)

    # Played at max, the replay runs to its last bar and says so.
    page.select_option("#clock-speed", "max")
    page.click("#clock-play")
    expect(page.locator("#clock-bar")).to_have_attribute("data-finished", "true", timeout=15_000)
    expect(page.locator("#clock-time")).to_have_text("2024-04-12 00:00:00")
    expect(page.locator("#clock-note")).to_contain_text("last bar")

    page.click("#clock-report")
    expect(page.locator("#report")).to_be_visible(timeout=10_000)  # a dialog over the screen
    expect(page.locator("#report-figures dd[data-figure=Sharpe]")).not_to_have_text("", timeout=10_000)
    expect(page.locator("#report-figures")).to_contain_text("vs DLY")
    frame = page.frame_locator("#report-frame")
    expect(frame.locator("#figures")).to_contain_text("Max drawdown", timeout=10_000)
    expect(frame.locator("svg#equity")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-replay.png"), full_page=True)
    page.click("#report-close")
    expect(page.locator("#report")).to_be_hidden()
    server.stop()
