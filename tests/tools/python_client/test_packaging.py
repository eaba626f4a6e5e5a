"""`pip install tools/python-client` works: the package builds, installs into a fresh virtualenv
with its console script, and imports without Django or the server's code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from tests.support.liveserver import ROOT


@pytest.mark.timeout(240)
def test_the_client_pip_installs_into_a_fresh_virtualenv_and_runs(tmp_path: Path) -> None:
    # A copy, so the build's egg-info and build/ stay out of the checkout.
    source = tmp_path / "python-client"
    shutil.copytree(
        ROOT / "tools" / "python-client", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    # No downloads: the dev environment's packages (pip, setuptools, websockets) are visible to it.
    (Path(site) / "dev-environment.pth").write_text(str(Path(websockets.__file__).parents[1]) + "\n")

    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--disable-pip-version-check", source],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = "import sys, tradesim, tradesim.cli; print(tradesim.__file__); print('django' in sys.modules)"
    imported = subprocess.run([python, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    script = subprocess.run([env_dir / "bin" / "tradesim", "--help"], capture_output=True, text=True)
    module = subprocess.run([python, "-m", "tradesim", "--version"], capture_output=True, text=True, cwd=tmp_path)

    where, django_loaded = imported.stdout.split()
    assert Path(where).is_relative_to(env_dir) and django_loaded == "False"
    assert script.returncode == 0 and "watch" in script.stdout
    assert module.returncode == 0 and module.stdout.strip() == "tradesim 0.1.0"
