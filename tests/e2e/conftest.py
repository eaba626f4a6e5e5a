from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import chromium


@pytest.fixture
def browser_page() -> Iterator[object]:
    """A Playwright page in Debian's chromium (no browser download)."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 900})
