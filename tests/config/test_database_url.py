"""DATABASE_URL becomes DATABASES through dj-database-url; what the URL cannot mean stops the process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, process_role
from tests.support.liveserver import ROOT, base_env


def settings_database(**env: str) -> dict:
    """DATABASES["default"] as the settings module builds it from this environment."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_query_parameters_reach_the_database_options() -> None:
    database = settings_database(
        DATABASE_URL="postgres://trading:pw@db.internal:5432/trading?sslmode=require&connect_timeout=5",
        DATABASE_POOL_MAX_SIZE="0",  # persistent connections, as before the pool
    )
    options = {key: value for key, value in database["OPTIONS"].items() if key != "application_name"}
    assert options == {"sslmode": "require", "connect_timeout": 5}
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", "5432", "trading")
    assert database["CONN_MAX_AGE"] == 60 and database["CONN_HEALTH_CHECKS"] is True


def test_a_percent_encoded_host_names_a_unix_socket_directory() -> None:
    database = database_from_url("postgres://trading@%2Fvar%2Frun%2Fpostgresql/trading", conn_max_age=0)
    assert database["HOST"] == "/var/run/postgresql"
    assert (database["USER"], database["NAME"], database["PASSWORD"]) == ("trading", "trading", "")


def test_sqlite_urls_take_relative_and_absolute_paths() -> None:
    assert database_from_url("sqlite:///db.sqlite3", conn_max_age=0)["NAME"] == "db.sqlite3"
    assert database_from_url("sqlite:////srv/trading/db.sqlite3", conn_max_age=0)["NAME"] == "/srv/trading/db.sqlite3"
    absolute = database_from_url("sqlite:////tmp/x.db", conn_max_age=60)
    assert absolute["ENGINE"] == "django.db.backends.sqlite3" and absolute["CONN_MAX_AGE"] == 60
    assert "CONN_HEALTH_CHECKS" not in absolute


def test_sqlite_keeps_its_wal_options_and_the_url_may_override_one(tmp_path) -> None:
    database = settings_database(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}?timeout=5")
    assert database["NAME"] == str(tmp_path / "x.sqlite3")
    assert database["OPTIONS"]["timeout"] == 5
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgres://trading:s3cret@db:notaport/trading", "not a valid url"),
        ("postgres://trading:s3cret@[db/trading", "not a valid url"),
        ("postgres://trading:s3cret@db:5432/", "a database name in the path"),
        ("mysql://trading:s3cret@db/trading", "a postgres:// or sqlite:/// URL"),
        ("db.internal:5432/trading", "a postgres:// or sqlite:/// URL"),
    ],
)
def test_a_bad_url_names_the_variable_and_hides_the_password(url: str, complaint: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as raised:
        database_from_url(url, conn_max_age=0)
    assert complaint in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_a_bad_url_stops_the_process_at_start() -> None:
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(DATABASE_URL="postgres://trading:s3cret@db:notaport/trading"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DATABASE_URL" in result.stderr
    assert "s3cret" not in result.stderr


def test_postgresql_connections_come_from_a_bounded_pool_by_default() -> None:
    database = settings_database(DATABASE_URL="postgres://trading@db:5432/trading")
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 2}
    assert database["CONN_MAX_AGE"] == 0  # the pool keeps them; Django refuses both
    assert database["OPTIONS"]["application_name"].startswith("trading:-c:")  # `python -c` here; daphne's says daphne


def test_the_pool_is_sized_from_the_environment_and_zero_keeps_persistent_connections() -> None:
    sized = settings_database(
        DATABASE_URL="postgres://trading@db:5432/trading",
        DATABASE_POOL_MAX_SIZE="4",
        DATABASE_POOL_MIN_SIZE="8",
        DATABASE_POOL_TIMEOUT_S="3",
    )
    assert sized["OPTIONS"]["pool"] == {"min_size": 4, "max_size": 4, "timeout": 3}
    persistent = settings_database(
        DATABASE_URL="postgres://trading@db:5432/trading", DATABASE_POOL_MAX_SIZE="0", DATABASE_CONN_MAX_AGE="30"
    )
    assert "pool" not in persistent["OPTIONS"] and persistent["CONN_MAX_AGE"] == 30


def test_persistent_connections_and_the_pool_together_stop_the_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=base_env(DATABASE_URL="postgres://trading@db:5432/trading", DATABASE_CONN_MAX_AGE="60"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DATABASE_POOL_MAX_SIZE=0" in result.stderr


def test_a_simulator_worker_gets_a_pool_of_four_by_default() -> None:
    code = (
        "import json, sys; sys.argv = ['manage.py', 'simulator_worker']; import django; django.setup(); "
        "from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS'], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(DATABASE_URL="postgres://trading@db:5432/trading"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options["pool"]["max_size"] == 4 and options["application_name"].startswith("trading:simulator_worker:")


def test_the_process_role_names_daphne_and_management_commands() -> None:
    assert process_role(["/srv/.venv/lib/python3.11/site-packages/daphne/__main__.py", "-b"]) == "daphne"
    assert process_role(["/srv/.venv/bin/daphne", "config.asgi:application"]) == "daphne"
    assert process_role(["manage.py", "simulator_worker"]) == "simulator_worker"
