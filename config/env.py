"""Typed readers for environment variables.

Each helper returns the default when the variable is unset or empty, and raises
ImproperlyConfigured (naming the variable and the bad value) when it is set to
something it cannot parse, so a typo stops the process instead of running with
a silently different configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: expected {expected}.")


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_optional_str(name: str) -> str | None:
    return _raw(name)


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(name, value, "one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _fail(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    if maximum is not None and number > maximum:
        raise _fail(name, value, f"an integer <= {maximum}")
    return number


def env_decimal(name: str, default: str) -> Decimal:
    """A non-negative, finite decimal (money: kept exact, never a float)."""
    value = _raw(name)
    text = default if value is None else value
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _fail(name, text, "a decimal number") from None
    if not number.is_finite() or number < 0:
        raise _fail(name, text, "a finite decimal number >= 0")
    return number


def env_optional_int(name: str) -> int | None:
    if _raw(name) is None:
        return None
    return env_int(name, default=0)


def env_list(name: str, default: Sequence[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]+", re.IGNORECASE)


def env_origins(name: str, default: Sequence[str]) -> list[str]:
    """Comma-separated browser origins (scheme://host[:port], a trailing slash dropped), or `*`."""
    origins = [item.rstrip("/") if item != "*" else item for item in env_list(name, default)]
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise _fail(name, origin, "origins like https://app.example.com or http://127.0.0.1:5173, or *")
    return origins


def env_choice(name: str, choices: Sequence[str], default: str) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value not in choices:
        raise _fail(name, value, "one of " + ", ".join(choices))
    return value


# The engines this service ships drivers for (psycopg; sqlite3 is in the standard library).
_DATABASE_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}


def _without_password(url: str) -> str:
    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)


def database_from_url(url: str, *, conn_max_age: int) -> dict[str, Any]:
    """Turn a DATABASE_URL into Django's dict (dj-database-url): postgres://user:pass@host:port/name
    (a query string becomes OPTIONS, e.g. ?sslmode=require; a socket directory goes percent-encoded
    in the host, postgres://user@%2Fvar%2Frun%2Fpostgresql/name) or sqlite:///relative.db,
    sqlite:////absolute/path.db."""
    shown = _without_password(url)
    try:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age)
    except dj_database_url.UnknownSchemeError:
        raise _fail("DATABASE_URL", shown, "a postgres:// or sqlite:/// URL") from None
    except ValueError as error:  # dj_database_url.ParseError: a port that is no number, a stray bracket
        raise ImproperlyConfigured(f"Environment variable DATABASE_URL={shown!r} is invalid: {error}") from None
    if config["ENGINE"] not in _DATABASE_ENGINES:
        raise _fail("DATABASE_URL", shown, "a postgres:// or sqlite:/// URL")
    if config["ENGINE"] == "django.db.backends.postgresql":
        if not config.get("NAME"):
            raise _fail("DATABASE_URL", shown, "a database name in the path")
        config["CONN_HEALTH_CHECKS"] = True
        config["PORT"] = str(config.get("PORT") or "")  # a string, as Django documents it
    else:
        # Persistent too: opening a SQLite connection (and its PRAGMAs) on every database call
        # was a large share of the connect path's CPU.
        config.pop("CONN_HEALTH_CHECKS", None)
    return dict(config)
