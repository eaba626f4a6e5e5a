"""The order of the tests for parallel runs (pytest-xdist; scripts/test passes -n and --dist
loadfile), a plugin that tests/conftest.py loads.

Each file runs on one worker, so a module-scoped fixture (a server, a cluster) starts once. The
files go out in collection order, and this puts the slowest folders first: what runs last on every
worker is then short, and no long file starts when the others are nearly done. (Grouping by
`xdist_group` marks instead, --dist loadgroup, does nothing under pytest 9.2 with pytest-xdist
3.8: the group rides in the node ID, which pytest no longer lets a plugin change; xdist issue 1386.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# The namespaced layout, the production clusters, the Sentinel failovers (over a minute, mostly
# waiting on Sentinel: last, they were the run's tail), the protocol fuzzing (one Hypothesis test of
# minutes: last, it was the run's tail), the browser, the embedded servers, the client's packaging
# and the scripts (pip installs), the settings (processes started); the in-process tests after them.
SLOWEST_FIRST = (
    "e2e/netns",
    "e2e/production",
    "sessions_app/realtime/test_redis_sentinel.py",
    "sessions_app/realtime/test_protocol_fuzzing.py",
    "e2e/browser",
    "e2e/embedded",
    "tools",
    "scripts",
    "config",
)


def rank(item: pytest.Item) -> int:
    where = item.path.relative_to(TESTS).as_posix()
    return next((n for n, folder in enumerate(SLOWEST_FIRST) if where.startswith(folder)), len(SLOWEST_FIRST))


@pytest.hookimpl(trylast=True)  # after pytest-django's ordering (database tests first)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=rank)  # stable: within a folder, the order pytest and pytest-django chose
