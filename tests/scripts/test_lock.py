"""scripts/lock --check passes on the committed locks and fails, naming the difference, when
pyproject.toml and a lock disagree. Run on a copy of the project's lock inputs (uv asks PyPI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.liveserver import ROOT, base_env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock", tmp_path / "scripts" / "lock")
    for name in ("pyproject.toml", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(project / "scripts" / "lock"), "--check"],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_committed_locks_match_pyproject(project: Path) -> None:
    result = check(project)

    assert result.returncode == 0, result.stderr
    assert "match pyproject.toml" in result.stdout


def test_a_dependency_dropped_from_pyproject_but_left_in_the_lock_fails_the_check(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "pytest-timeout>=2.4.0",\n', "", 1))

    result = check(project)

    assert result.returncode == 1
    assert "-pytest-timeout==" in result.stderr
    assert "run scripts/lock and commit the result" in result.stderr
