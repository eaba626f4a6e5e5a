from __future__ import annotations

import importlib
import os
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.test import override_settings

from tests.support.liveserver import DaphneServer
from tests.support.production import IN_CI
from tests.support.run import run_directory
from tests.support.servers import ServerFactory, running_server, server_factory

pytest_plugins = ["tests.support.scheduling"]
FAST_PASSWORD_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
# The servers the tests start inherit this environment (tests/support/liveserver.py base_env): they
# log in a few hundred times a run, and PBKDF2's 0.5 s of CPU a login (a refused one too) was the
# largest single cost of the run. A test about slow logins sets PASSWORD_HASHERS back.
os.environ.setdefault("PASSWORD_HASHERS", FAST_PASSWORD_HASHER)


def pytest_configure(config: pytest.Config) -> None:
    run_directory()  # made before pytest-xdist starts its workers, so that they share it


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    start, started = server_factory(tmp_path)
    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """One server for every test file a pytest-xdist worker runs, for tests that need no special
    settings: they own the users and devices they make (the demo user's simulator stays stopped),
    and none needs a fresh database. One a file cost a daphne and a token desk each."""
    with running_server(tmp_path_factory.mktemp("daphne")) as server:
        yield server


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """In-process tests create many users; the production hasher would make up most of their run time."""
    with override_settings(PASSWORD_HASHERS=[FAST_PASSWORD_HASHER]):
        yield


# The accounting of fills, the journal and resets are checked by hand-computed figures without
# commissions; the fee models have tests of their own (test_order_types_services, e2e order types).
COMMISSION_FREE = {"MARKET_COMMISSION_PER_SHARE": "0", "MARKET_COMMISSION_MINIMUM": "0", "MARKET_COMMISSION_BPS": "0"}


@pytest.fixture
def commission_free() -> Iterator[None]:
    """The MARKET_COMMISSION_* schedule set to nothing (the default charges 0.005 a share, at least 1)."""
    with override_settings(**{name: Decimal(value) for name, value in COMMISSION_FREE.items()}):
        yield


@pytest.fixture
def default_instruments() -> None:
    """The data migration's instruments and feed row (a transactional test's flush empties every table)."""
    migration = importlib.import_module("market_app.migrations.0002_default_instruments")
    migration.create(django_apps, None)
    liquidity = importlib.import_module("market_app.migrations.0005_default_instrument_liquidity")
    liquidity.set_liquidity(django_apps, None)


# --- Tests that CI runs and this run skipped ------------------------------------------------------

NEEDS_THE_MACHINE = ("production", "browser", "netns")
_skipped: Counter[str] = Counter()
_reasons: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        for marker in NEEDS_THE_MACHINE:
            if marker in report.keywords:
                _skipped[marker] += 1
                longrepr = report.longrepr
                _reasons.setdefault(marker, longrepr[2] if isinstance(longrepr, tuple) else str(longrepr))
                break


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _skipped or IN_CI:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("!", f"{sum(_skipped.values())} tests that CI runs were SKIPPED here", red=True)
    for marker, count in _skipped.most_common():
        write(f"  {count} marked {marker}: {_reasons[marker]}", red=True)
    write("  They need the machine's PostgreSQL and Redis (production), Debian's chromium (browser), root and")
    write("  nginx and PostgreSQL's binaries (netns). CI=true makes them mandatory (scripts/test under .ci/run);")
    write('  to leave them out on purpose, deselect them: -m "not production and not browser and not netns".')
