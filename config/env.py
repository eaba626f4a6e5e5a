"""Typed readers for environment variables.

Each helper returns the default when the variable is unset or empty, and raises
ImproperlyConfigured (naming the variable and the bad value) when it is set to
something it cannot parse, so a typo stops the process instead of running with
a silently different configuration.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
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


# --- Redis: one server, several shards, or Sentinel-managed masters (docs/redis.md) ---------------

_REDIS_URL = re.compile(r"(redis|rediss|unix)://\S+", re.IGNORECASE)
_HOST_PORT = re.compile(r"(?P<host>\[[0-9a-fA-F:]+\]|[^\s:,\[\]]+):(?P<port>\d{1,5})")


def _redis_url(name: str, url: str) -> str:
    if not _REDIS_URL.fullmatch(url):
        raise _fail(name, _without_password(url), "redis://[:password@]host:port/db URLs (or rediss://, unix://)")
    return url


def env_redis_shards() -> list[dict[str, Any]]:
    """The Redis servers every process shares, in shard order: a list of dicts that are either
    {"url": ...} or {"sentinels": [(host, port), ...], "master_name": ..., "password": ...,
    "sentinel_password": ..., "db": ...}. Empty when none is configured (the embedded mode).

    Exactly one of REDIS_URL (one server), REDIS_URLS (comma-separated: one shard each) and
    REDIS_SENTINELS (host:port,... with REDIS_SENTINEL_MASTER: one shard per comma-separated
    master name) may be set. The order is the shard order: keep it (and the count) the same on
    every process, or they place keys on different shards.
    """
    single, several, sentinels = _raw("REDIS_URL"), _raw("REDIS_URLS"), _raw("REDIS_SENTINELS")
    given = [
        name
        for name, value in (("REDIS_URL", single), ("REDIS_URLS", several), ("REDIS_SENTINELS", sentinels))
        if value
    ]
    if len(given) > 1:
        raise ImproperlyConfigured(
            f"Set only one of REDIS_URL, REDIS_URLS and REDIS_SENTINELS (got {', '.join(given)})."
        )
    if sentinels is None:
        for dependent in ("REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD", "REDIS_PASSWORD", "REDIS_DB"):
            if _raw(dependent) is not None:
                raise ImproperlyConfigured(
                    f"{dependent} is set but REDIS_SENTINELS is not (a URL carries its own password and db)."
                )
    if single is not None:
        return [{"url": _redis_url("REDIS_URL", single)}]
    if several is not None:
        urls = [_redis_url("REDIS_URLS", url) for url in env_list("REDIS_URLS", default=[])]
        if len(set(urls)) != len(urls):
            raise _fail("REDIS_URLS", _without_password(several), "distinct URLs (one per shard)")
        return [{"url": url} for url in urls]
    if sentinels is None:
        return []
    addresses = []
    for item in env_list("REDIS_SENTINELS", default=[]):
        match = _HOST_PORT.fullmatch(item)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise _fail("REDIS_SENTINELS", sentinels, "comma-separated host:port pairs of Sentinels")
        addresses.append((match["host"].strip("[]"), int(match["port"])))
    masters = env_list("REDIS_SENTINEL_MASTER", default=[])
    if not masters:
        raise ImproperlyConfigured(
            "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master name(s) the Sentinels watch)."
        )
    if len(set(masters)) != len(masters):
        raise _fail("REDIS_SENTINEL_MASTER", ",".join(masters), "distinct master names (one per shard)")
    password = _raw("REDIS_PASSWORD")
    sentinel_password = _raw("REDIS_SENTINEL_PASSWORD")
    db = env_int("REDIS_DB", default=0, minimum=0)
    return [
        {
            "sentinels": addresses,
            "master_name": master,
            "password": password,
            "sentinel_password": sentinel_password,
            "db": db,
        }
        for master in masters
    ]


def channel_layer_host(shard: dict[str, Any], *, socket_timeout: int) -> dict[str, Any]:
    """One shard as a channels-redis `hosts` entry: an address, or its Sentinel form
    (channels_redis.utils.create_pool: `sentinels`, `master_name`, `sentinel_kwargs`)."""
    if shard.get("url"):
        return {"address": shard["url"], "socket_timeout": socket_timeout}
    return {
        "sentinels": list(shard["sentinels"]),
        "master_name": shard["master_name"],
        "sentinel_kwargs": {"password": shard["sentinel_password"], "socket_timeout": 2},
        "password": shard["password"],
        "db": shard["db"],
        "socket_timeout": socket_timeout,
    }


def cache_for(shard: dict[str, Any], *, key_prefix: str) -> dict[str, Any]:
    """Django's cache on one shard: RedisCache by URL, or the Sentinel-aware variant."""
    if shard.get("url"):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": shard["url"],
            "KEY_PREFIX": key_prefix,
        }
    return {
        "BACKEND": "sessions_app.realtime.redis_clients.SentinelRedisCache",
        "LOCATION": shard["master_name"],
        "KEY_PREFIX": key_prefix,
        "OPTIONS": {"shard": shard},
    }


def process_role(argv: Sequence[str] | None = None) -> str:
    """What this process is, for the database's `application_name`: `daphne`, a management command
    (`simulator_worker`, `migrate`), or the program's name."""
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]).name if argv else "python"
    if program == "__main__.py":  # python -m daphne
        program = Path(argv[0]).parent.name
    if program == "manage.py" and len(argv) > 1:
        return argv[1][:40]
    return program[:40] or "python"
