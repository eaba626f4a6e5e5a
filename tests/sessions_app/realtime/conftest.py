"""Fixtures of the kernel's tests of library internals (sessions_app/realtime/internals.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessions_app.realtime import internals


@pytest.fixture
def fresh_verdicts() -> Iterator[None]:
    """Every guard judged afresh in the test, and again after it."""
    for guard in internals.GUARDS:
        guard.reset()
    yield
    for guard in internals.GUARDS:
        guard.reset()


@pytest.fixture
def unsupported_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every library outside the version ranges the guards were tested in."""
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
