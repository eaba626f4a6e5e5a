"""Debian's chromium driven by Playwright (no browser downloads), and origins of our own to load pages from."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.liveserver import LocalAddress
from tests.support.production import IN_CI

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@contextmanager
def chromium() -> Iterator[object]:
    """A headless chromium (Playwright's Browser); skips, or fails under CI=true, without one."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("the browser test needs Debian's chromium; CI=true makes it mandatory")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def log_in_to_console(page: object, base_url: str, password: str = "demo-password") -> None:
    """Open the console at `base_url` as the demo trader and wait for its socket to be open."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/")  # type: ignore[attr-defined]
    page.fill("#login [name=password]", password)  # type: ignore[attr-defined]
    page.click("#login button")  # type: ignore[attr-defined]
    expect(page.locator("#conn-state")).to_have_text("open", timeout=10_000)  # type: ignore[attr-defined]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class StaticOrigin(LocalAddress):
    """A directory served over HTTP on 127.0.0.1 and a port of its own: an origin apart from the service."""

    def __init__(self, directory: Path) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
