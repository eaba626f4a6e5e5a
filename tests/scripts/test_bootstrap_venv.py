"""scripts/bootstrap-venv says what it does, installs a lock hash-checked, and installs again only
when the lock's content changes. Run on a copy of the script, with a lock of one wheel made here
(no index: nothing is downloaded), and with that lock plus the dev lock's own uv pin (pip fetches
that one pin, through its cache, and uv installs the rest)."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.liveserver import ROOT, base_env


def make_wheel(directory: Path) -> str:
    """A one-module wheel, lockprobe 1.0; returns its sha256."""
    files = {
        "lockprobe.py": "ANSWER = 42\n",
        "lockprobe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: lockprobe\nVersion: 1.0\n",
        "lockprobe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
        f"{len(text.encode())}"
        for name, text in files.items()
    ]
    files["lockprobe-1.0.dist-info/RECORD"] = "\n".join([*record, "lockprobe-1.0.dist-info/RECORD,,"]) + "\n"
    wheel = directory / "lockprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "wheels").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap-venv", tmp_path / "scripts" / "bootstrap-venv")
    return tmp_path


def uv_pin() -> str:
    """The dev lock's uv pin with all of its hashes."""
    found = re.search(r"^uv==.*?(?=^\S)", (ROOT / "requirements-dev.txt").read_text(), re.S | re.M)
    assert found, "requirements-dev.txt pins uv"
    return found.group(0)


def bootstrap(project: Path) -> subprocess.CompletedProcess[str]:
    wheels = str(project / "wheels")
    # uv's pin comes from the index (pip's cache); every other pin from the wheels made here.
    offline = {"UV_NO_INDEX": "1", "UV_FIND_LINKS": wheels}
    if "uv==" not in (project / "lock.txt").read_text():
        offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels}
    return subprocess.run(
        [str(project / "scripts" / "bootstrap-venv"), "lock.txt"],
        env=base_env(PYTHON=sys.executable, **offline),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bootstrap_says_each_step_and_installs_again_only_when_the_lock_changes(project: Path) -> None:
    lock = f"lockprobe==1.0 \\\n    --hash=sha256:{make_wheel(project / 'wheels')}\n"
    (project / "lock.txt").write_text(lock)

    first = bootstrap(project)
    again = bootstrap(project)
    (project / "lock.txt").write_text("# regenerated\n" + lock)
    changed = bootstrap(project)

    assert first.returncode == again.returncode == changed.returncode == 0, first.stderr + changed.stderr
    assert first.stdout.splitlines() == [
        f"bootstrap-venv: creating .venv with Python {sys.version.split()[0]}",
        "bootstrap-venv: installing lock.txt (1 pins, hash-checked; a first install takes about a minute)",
        "bootstrap-venv: installed lock.txt",
    ]
    assert again.stdout.splitlines() == ["bootstrap-venv: .venv already has lock.txt"]
    assert changed.stdout.splitlines()[0].startswith("bootstrap-venv: installing lock.txt")
    probe = [str(project / ".venv" / "bin" / "python"), "-c", "import lockprobe; print(lockprobe.ANSWER)"]
    assert subprocess.run(probe, capture_output=True, text=True, timeout=30).stdout == "42\n"


def test_bootstrap_refuses_a_lock_whose_files_are_not_the_hashed_ones(project: Path) -> None:
    make_wheel(project / "wheels")
    for hashes, complaint in [("", "Hashes are required"), (f" \\\n    --hash=sha256:{'0' * 64}", "DO NOT MATCH")]:
        (project / "lock.txt").write_text(f"lockprobe==1.0{hashes}\n")

        result = bootstrap(project)

        assert result.returncode != 0
        assert complaint in result.stderr, result.stderr
        assert "installed lock.txt" not in result.stdout
        assert not (project / ".venv" / ".installed-lock.txt").exists()


def test_a_lock_that_pins_uv_is_installed_by_that_uv_and_still_hash_checked(project: Path) -> None:
    digest = make_wheel(project / "wheels")
    (project / "lock.txt").write_text(f"lockprobe==1.0 \\\n    --hash=sha256:{'0' * 64}\n{uv_pin()}")

    refused = bootstrap(project)
    stamped_when_refused = (project / ".venv" / ".installed-lock.txt").exists()
    (project / "lock.txt").write_text(f"lockprobe==1.0 \\\n    --hash=sha256:{digest}\n{uv_pin()}")
    installed = bootstrap(project)

    assert refused.returncode != 0
    assert "hash" in refused.stderr.lower(), refused.stderr
    assert not stamped_when_refused
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.splitlines() == [
        "bootstrap-venv: installing lock.txt (2 pins, hash-checked, with the uv it pins)",
        "bootstrap-venv: installed lock.txt",
    ]
    probe = [str(project / ".venv" / "bin" / "python"), "-c", "import lockprobe; print(lockprobe.ANSWER)"]
    assert subprocess.run(probe, capture_output=True, text=True, timeout=30).stdout == "42\n"
    assert (project / ".venv" / "bin" / "uv").exists()
