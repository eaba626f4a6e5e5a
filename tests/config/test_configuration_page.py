"""docs/configuration.md lists every environment variable the service reads, from the one
declaration next to each read (`meaning=`), as one table that reads the same whatever process
generated it. (That the committed page is current is the protocol export's test.)"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from config import env
from config.env import env_int
from sessions_app.realtime.export import configuration_markdown
from tests.support.liveserver import ROOT, base_env

PAGE = ROOT / "docs" / "configuration.md"
SERVICE_SOURCES = [
    ROOT / "manage.py",
    *(path for app in ("config", "sessions_app", "simulator_app", "market_app") for path in (ROOT / app).rglob("*.py")),
]
NAME = r"\(\s*\"([A-Z][A-Z0-9_]*)\""
# A read through the env helpers, os.environ (get, setdefault, subscript) or os.getenv.
READS = re.compile(
    rf"\benv_\w+{NAME}|\bos\.environ(?:\.get|\.setdefault)?{NAME}|\bos\.environ\[\s*\"([A-Z][A-Z0-9_]*)\"|\bgetenv{NAME}"
)


def variables_read_by_the_service() -> set[str]:
    found = set()
    for path in SERVICE_SOURCES:
        for match in READS.finditer(path.read_text()):
            found.add(next(group for group in match.groups() if group))
    return found


def variables_on_the_page() -> list[str]:
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", PAGE.read_text(), flags=re.MULTILINE)


def test_every_environment_variable_the_service_reads_is_on_the_configuration_page() -> None:
    read = variables_read_by_the_service()

    assert {"SERVICE_MODE", "REDIS_SENTINEL_MASTER", "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE"} <= read
    assert sorted(read - set(variables_on_the_page())) == []


def test_the_configuration_page_lists_only_variables_the_service_reads_each_once() -> None:
    listed = variables_on_the_page()

    assert len(listed) == len(set(listed))
    assert sorted(set(listed) - variables_read_by_the_service()) == []


def test_the_configuration_page_is_one_table_with_a_meaning_in_every_row() -> None:
    lines = PAGE.read_text().splitlines()
    header = lines.index("| variable | default | accepted | meaning |")
    rows = lines[header + 2 :]

    assert rows and all(row.startswith("| `") and row.endswith(" |") for row in rows)
    assert all(row.split(" | ")[-1].strip(" |") for row in rows)


def test_the_configuration_page_reads_the_same_when_generated_in_production_mode() -> None:
    code = (
        "import django; django.setup(); from sessions_app.realtime.export import configuration_markdown; "
        "print(configuration_markdown(), end='')"
    )
    production = base_env(
        SERVICE_MODE="production",
        SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgres://u:p@db:5432/app",
        REDIS_URL="redis://cache:6379/0",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=production, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == configuration_markdown() == PAGE.read_text()
    assert str(ROOT) not in result.stdout


def test_a_variable_declared_twice_with_different_meanings_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "DECLARED", {})
    env_int("WS_TEST_NUMBER", default=1, meaning="a number")
    env_int("WS_TEST_NUMBER", default=1, meaning="a number")
    env_int("WS_TEST_NUMBER", default=1)

    with pytest.raises(ValueError, match="WS_TEST_NUMBER is declared twice"):
        env_int("WS_TEST_NUMBER", default=1, meaning="another number")
