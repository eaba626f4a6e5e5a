"""Settings come from the environment and fail loudly; production refuses unsafe defaults."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int, env_list
from tests.support.liveserver import ROOT, base_env

GOOD_PRODUCTION = {
    "SERVICE_MODE": "production",
    "SECRET_KEY": "k" * 50,
    "ALLOWED_HOSTS": "example.com",
    "DATABASE_URL": "postgres://u:p@db:5432/app",
    "REDIS_URL": "redis://cache:6379/0",
}


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=60
    )


def test_a_bad_integer_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_TEST_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="WS_TEST_NUMBER='ten'"):
        env_int("WS_TEST_NUMBER", default=1)


def test_a_bad_boolean_is_refused_and_empty_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_TEST_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("WS_TEST_FLAG", default=False)
    monkeypatch.setenv("WS_TEST_FLAG", "")
    assert env_bool("WS_TEST_FLAG", default=True) is True


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_TEST_LIST", " a.com, b.com ,,")
    assert env_list("WS_TEST_LIST", default=[]) == ["a.com", "b.com"]


def test_database_urls_become_django_settings() -> None:
    pg = database_from_url("postgres://alice:s%40cret@db.internal:6432/trading", conn_max_age=30)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "trading",
        "alice",
        "s@cret",
        "db.internal",
        "6432",
    )
    assert database_from_url("sqlite:////tmp/x.db", conn_max_age=0)["NAME"] == "/tmp/x.db"
    with pytest.raises(ImproperlyConfigured):
        database_from_url("mysql://x/y", conn_max_age=0)


def test_production_starts_with_a_real_secret_and_debug_off() -> None:
    result = load_settings(**GOOD_PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"WS_HEARTBEAT_INTERVAL_MS": "5000", "WS_HEARTBEAT_TIMEOUT_MS": "4000"}, "WS_HEARTBEAT_TIMEOUT_MS"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(override: dict[str, str], complaint: str) -> None:
    result = load_settings(**{**GOOD_PRODUCTION, **override})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


HTTPS_SETTINGS = [
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "SILENCED_SYSTEM_CHECKS",
]


def https_settings(**env: str) -> list[object]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps([getattr(settings, name) for name in {HTTPS_SETTINGS}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_sends_hsts_for_a_year_and_leaves_the_https_redirect_to_the_proxy() -> None:
    assert https_settings(**GOOD_PRODUCTION) == [31_536_000, True, False, ["security.W008", "security.W021"]]
    assert https_settings(**GOOD_PRODUCTION, SECURE_SSL_REDIRECT="true", SECURE_HSTS_PRELOAD="true") == [
        31_536_000,
        True,
        True,
        [],
    ]
    assert https_settings(**GOOD_PRODUCTION, SECURE_HSTS_SECONDS="0")[0] == 0
    assert https_settings()[:3] == [0, False, False]


def test_replay_mode_refuses_a_missing_bar_file() -> None:
    result = load_settings(MARKET_SOURCE="replay", MARKET_REPLAY_FILE="/no/such/bars.csv")
    assert result.returncode != 0 and "MARKET_REPLAY_FILE" in result.stderr


def test_password_hashers_are_djangos_unless_the_environment_names_others() -> None:
    code = (
        "import django, json; django.setup(); from django.conf import settings;"
        " print(json.dumps(settings.PASSWORD_HASHERS))"
    )

    def hashers(**env: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    from django.conf import global_settings

    assert hashers(PASSWORD_HASHERS="") == global_settings.PASSWORD_HASHERS
    named = "django.contrib.auth.hashers.ScryptPasswordHasher,django.contrib.auth.hashers.PBKDF2PasswordHasher"
    assert hashers(PASSWORD_HASHERS=named) == named.split(",")
