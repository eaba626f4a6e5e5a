"""Behind the proxy (SERVE_STATIC off, as in production) pages name collectstatic's content-hashed
files, ES module imports included; daphne serving them itself keeps the plain names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.template.loader import render_to_string

from tests.support.liveserver import ROOT, base_env

HASHED = r"[0-9a-f]{12}"
PRODUCTION = {
    "SERVICE_MODE": "production",
    "SECRET_KEY": "k" * 50,
    "ALLOWED_HOSTS": "example.com",
    "DATABASE_URL": "postgres://u:p@db:5432/app",
    "REDIS_URL": "redis://cache:6379/0",
}


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    static_root = tmp_path_factory.mktemp("static")
    result = run(["manage.py", "collectstatic", "--noinput"], **PRODUCTION, STATIC_ROOT=str(static_root))
    assert result.returncode == 0, result.stderr
    return static_root


def test_collectstatic_writes_hashed_files_whose_module_imports_name_hashed_files(collected: Path) -> None:
    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]
    console = manifest["trading/console.js"]
    library = manifest["trading/client/connection-manager.js"]
    assert re.fullmatch(rf"trading/console\.{HASHED}\.js", console)
    assert re.fullmatch(rf"trading/client/connection-manager\.{HASHED}\.js", library)

    source = (collected / console).read_text()
    assert f'from "./client/{Path(library).name}";' in source
    assert 'from "./client/connection-manager.js"' not in source
    assert (collected / library).is_file()
    # The plain names stay too, for pages elsewhere that import the library by its name.
    assert (collected / "trading" / "client" / "connection-manager.js").is_file()


def test_a_production_console_page_names_hashed_urls(collected: Path) -> None:
    code = "import django; django.setup(); from django.template.loader import render_to_string; "
    code += "print(render_to_string('trading/console.html'))"
    result = run(["-c", code], **PRODUCTION, STATIC_ROOT=str(collected))
    assert result.returncode == 0, result.stderr
    assert re.search(rf'<script type="module" src="/static/trading/console\.{HASHED}\.js">', result.stdout)
    assert re.search(rf'href="/static/trading/console\.{HASHED}\.css"', result.stdout)


def test_daphne_refuses_to_start_behind_a_proxy_without_collectstatic(tmp_path: Path) -> None:
    result = run(["-c", "import config.asgi"], **PRODUCTION, STATIC_ROOT=str(tmp_path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "collectstatic" in result.stderr


def test_when_daphne_serves_static_files_pages_name_them_plainly() -> None:
    page = render_to_string("trading/console.html")
    assert '<script type="module" src="/static/trading/console.js">' in page
