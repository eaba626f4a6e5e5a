"""End-to-end tests, grouped by what they start; the folder gives each test its markers:

embedded/    daphne processes with the embedded defaults (SQLite, the in-memory channel layer)
production/  production mode: the machine's PostgreSQL and Redis, simulator workers, and what
             the recipes put in front (nginx, pgbouncer) or behind (Redis of the test's own)
browser/     Debian's chromium driving the console against an embedded daphne
netns/       the production layout on hosts of its own (Linux network namespaces, root)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium

HERE = Path(__file__).parent
MARKERS = {
    "embedded": ("e2e",),
    "production": ("e2e", "production"),
    "browser": ("e2e", "browser"),
    "netns": ("e2e", "production", "netns"),
}


def pytest_itemcollected(item: pytest.Item) -> None:
    if item.path.is_relative_to(HERE):
        for marker in MARKERS[item.path.relative_to(HERE).parts[0]]:
            item.add_marker(marker)


@pytest.fixture
def browser_page() -> Iterator[object]:
    """A Playwright page in Debian's chromium (no browser download)."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 900})
