"""The console as one trading screen, in Debian's chromium against a live daphne: at 1400x1000 the
prices, chart, book, ticket, orders, positions, fills and account are all in view without
scrolling, the chart beside the book, the protocol log folded away; one ticket offers every order
type, time in force and class of the protocol. Saves the README's screenshot
(test-artifacts/console.png, copied to docs/console.png)."""

from __future__ import annotations

from tests.support.browser import log_in_to_console
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

ARTIFACTS = ROOT / "test-artifacts"
WIDTH, HEIGHT = 1400, 1000
IN_VIEW = (
    "#watchlist",
    "#chart",
    "#book",
    "#ticket-panel",
    "#ticket button[type=submit]",
    "#activity",
    "#orders",
    "#positions-panel",
    "#fills-panel",
    "#account",
    "#sim-status",
    "#start-sim",
)


def choices(field: str) -> list[str]:
    """The values the protocol's place_order takes for `field`."""
    from market_app.messages import PlaceOrder

    schema = PlaceOrder.model_json_schema()["properties"][field]
    return schema.get("enum") or next(option["enum"] for option in schema["anyOf"] if "enum" in option)


def test_the_console_is_one_screen_at_1400_by_1000(make_server: ServerFactory, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    server = make_server(
        MARKET_TICK_MS="200", SIMULATOR_LEASE_TTL_MS="2000", SIMULATOR_LEASE_RENEW_MS="500", **RELAXED_LOGIN_THROTTLE
    )
    log_in_to_console(page, server.http)
    page.click("#start-sim")
    expect(page.locator("#sim-status")).to_have_text("running", timeout=10_000)
    expect(page.locator("#ladder tbody tr.bid")).to_have_count(10, timeout=10_000)

    # One ticket, for every type, time in force and class the protocol has.
    for field in ("side", "orderType", "timeInForce", "orderClass"):
        offered = page.locator(f"#ticket [name={field}] option").evaluate_all("options => options.map(o => o.value)")
        assert offered == choices(field), field

    # A market buy that fills, and a limit buy far below the market that stays open: one table has both.
    page.locator('#prices tr[data-symbol="MSFT"]').click()
    expect(page.locator("#ticket-symbol")).to_have_value("MSFT")
    page.fill("#ticket [name=quantity]", "3")
    page.click("#ticket button[type=submit]")
    expect(page.locator('#positions tr[data-symbol="MSFT"] td.quantity')).to_have_text("3", timeout=10_000)
    page.select_option("#ticket [name=orderType]", "limit")
    page.fill("#ticket [name=limitPrice]", "100")
    page.click("#ticket button[type=submit]")
    expect(page.locator("#orders tbody tr.open")).to_have_count(1, timeout=10_000)
    expect(page.locator("#orders tbody tr.done td.order-status")).to_have_text("filled")
    expect(page.locator("#fills tbody tr")).to_have_count(1, timeout=10_000)
    # Some candles to show in the screenshot: the 1 s bars of the seconds since the start.
    page.wait_for_function("Number(document.querySelector('#candle-chart').dataset.bars) >= 12", timeout=30_000)

    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= WIDTH and size[1] <= HEIGHT, size
    for selector in IN_VIEW:
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= WIDTH and box["y"] + box["height"] <= HEIGHT, (selector, box)
    chart, book = page.locator("#chart").bounding_box(), page.locator("#book").bounding_box()
    assert chart and book and chart["y"] == book["y"] and chart["x"] + chart["width"] <= book["x"]  # side by side
    expect(page.locator("#log")).to_be_hidden()  # folded away
    page.click("#log-panel summary")
    expect(page.locator("#log li").first).to_be_visible()

    page.click("#log-panel summary")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"))
    server.stop()
