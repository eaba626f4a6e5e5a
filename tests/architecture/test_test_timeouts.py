"""A hung test fails on its own after the per-test limit (pytest-timeout, set in pyproject.toml),
and the run goes on: the "signal" method fails just that test ("thread" would end the whole run).
That pytest-timeout does so is its own tested behaviour; the project's choice is what is kept here."""

from __future__ import annotations

import pytest


def test_the_project_sets_a_per_test_limit(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 300
    assert pytestconfig.getini("timeout_method") == "signal"
