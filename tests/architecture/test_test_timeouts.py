"""A hung test fails on its own after the per-test limit (pytest-timeout, set in pyproject.toml),
and the run goes on: for async tests, and for tests waiting on a subprocess such as daphne."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.liveserver import ROOT, base_env

HUNG_TESTS = """
import asyncio
import subprocess


async def test_an_async_test_that_hangs():
    await asyncio.sleep(60)


def test_a_test_waiting_on_a_subprocess_that_hangs():
    subprocess.run(["sleep", "60"], check=False)


def test_the_next_test_still_runs():
    assert True
"""


def test_the_project_sets_a_per_test_limit(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 300
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_hung_test_fails_after_the_limit_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG_TESTS)

    # The project's configuration, with the limit shortened to two seconds.
    project = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *project, "-o", "timeout=2", str(tmp_path / "test_hung.py")],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "2 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    failed = [line.split()[1].split("::")[-1] for line in result.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed == ["test_an_async_test_that_hangs", "test_a_test_waiting_on_a_subprocess_that_hangs"]
    assert "Failed: Timeout (>2.0s) from pytest-timeout" in result.stdout
