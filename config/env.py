"""Typed readers for environment variables, each read declared once with its meaning.

Each helper returns the default when the variable is unset or empty, and raises
ImproperlyConfigured (naming the variable and the bad value) when it is set to
something it cannot parse, so a typo stops the process instead of running with
a silently different configuration.

The read that passes `meaning=` declares the variable: its name, default, accepted values and
meaning are recorded in DECLARED, which settings hands on as ENVIRONMENT_VARIABLES, and
`manage.py export_protocol` writes docs/configuration.md from it. `shown_default` replaces the
default on that page where it depends on the mode, the process or the checkout.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Variable:
    """One environment variable as docs/configuration.md lists it (all four as Markdown text)."""

    name: str
    default: str
    accepted: str
    meaning: str


# Every declared variable, in the order settings first reads them.
DECLARED: dict[str, Variable] = {}


def _shown(value: object) -> str:
    if value is None or value == [] or value == "":
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "`" + ",".join(value) + "`"
    return f"`{value}`"


def _declare(name: str, meaning: str | None, *, default: str, accepted: str) -> None:
    if meaning is None:
        return
    variable = Variable(name, default, accepted, meaning)
    if DECLARED.setdefault(name, variable) != variable:
        raise ValueError(f"{name} is declared twice, differently: give `meaning=` at one read only")


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"integer {minimum} to {maximum}"
    if minimum is not None:
        return f"integer ≥ {minimum}"
    if maximum is not None:
        return f"integer ≤ {maximum}"
    return "integer"


def env_read_elsewhere(name: str, *, meaning: str, shown_default: str = "unset", accepted: str = "text") -> None:
    """Declare a variable that is read where settings cannot reach (a library, or code that runs
    before settings), so the configuration page lists it too."""
    _declare(name, meaning, default=shown_default, accepted=accepted)


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: expected {expected}.")


def env_str(
    name: str, default: str, *, meaning: str | None = None, shown_default: str | None = None, accepted: str = "text"
) -> str:
    _declare(name, meaning, default=shown_default or _shown(default), accepted=accepted)
    value = _raw(name)
    return default if value is None else value


def env_optional_str(
    name: str, *, meaning: str | None = None, shown_default: str = "unset", accepted: str = "text"
) -> str | None:
    _declare(name, meaning, default=shown_default, accepted=accepted)
    return _raw(name)


def env_bool(name: str, default: bool, *, meaning: str | None = None, shown_default: str | None = None) -> bool:
    _declare(name, meaning, default=shown_default or _shown(default), accepted="on/off")
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(name, value, "one of 1/0, true/false, yes/no, on/off")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    meaning: str | None = None,
    shown_default: str | None = None,
) -> int:
    _declare(name, meaning, default=shown_default or _shown(default), accepted=_bounds(minimum, maximum))
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


def env_decimal(name: str, default: str, *, meaning: str | None = None) -> Decimal:
    """A non-negative, finite decimal (money: kept exact, never a float)."""
    _declare(name, meaning, default=_shown(default), accepted="decimal ≥ 0")
    value = _raw(name)
    text = default if value is None else value
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _fail(name, text, "a decimal number") from None
    if not number.is_finite() or number < 0:
        raise _fail(name, text, "a finite decimal number >= 0")
    return number


def env_optional_decimal(name: str, *, meaning: str | None = None) -> Decimal | None:
    """A positive, finite decimal, or None when the variable is unset."""
    _declare(name, meaning, default="unset", accepted="decimal > 0")
    value = _raw(name)
    if value is None:
        return None
    number = env_decimal(name, default="0")
    if number <= 0:
        raise _fail(name, value, "a finite decimal number > 0")
    return number


def env_optional_int(name: str, *, meaning: str | None = None, shown_default: str = "unset") -> int | None:
    _declare(name, meaning, default=shown_default, accepted="integer")
    if _raw(name) is None:
        return None
    return env_int(name, default=0)


def env_list(
    name: str,
    default: Sequence[str],
    *,
    meaning: str | None = None,
    shown_default: str | None = None,
    accepted: str = "comma-separated list",
) -> list[str]:
    _declare(name, meaning, default=shown_default or _shown(list(default)), accepted=accepted)
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]+", re.IGNORECASE)


def env_origins(
    name: str, default: Sequence[str], *, meaning: str | None = None, shown_default: str | None = None
) -> list[str]:
    """Comma-separated browser origins (scheme://host[:port], a trailing slash dropped), or `*`."""
    accepted = "comma-separated origins (`https://app.example.com`), or `*`"
    _declare(name, meaning, default=shown_default or _shown(list(default)), accepted=accepted)
    origins = [item.rstrip("/") if item != "*" else item for item in env_list(name, default)]
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise _fail(name, origin, "origins like https://app.example.com or http://127.0.0.1:5173, or *")
    return origins


def env_choice(
    name: str, choices: Sequence[str], default: str, *, meaning: str | None = None, shown_default: str | None = None
) -> str:
    named = [f"`{choice}`" for choice in choices]
    _declare(
        name, meaning, default=shown_default or _shown(default), accepted=", ".join(named[:-1]) + " or " + named[-1]
    )
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
    url_form = "`redis://[:password@]host:port/db` (or `rediss://`, `unix://`)"
    single = env_optional_str(
        "REDIS_URL",
        meaning="one Redis for the channel layer (pub/sub), the session streams, connection limits and "
        "tickets, and the cache (login throttling); unset, the embedded mode: the in-memory channel layer and "
        "process memory, one process only. Production needs it, or `REDIS_URLS`, or `REDIS_SENTINELS` (only "
        "one of the three)",
        shown_default="unset (in-memory channel layer)",
        accepted=url_form,
    )
    several = env_optional_str(
        "REDIS_URLS",
        meaning="instead of `REDIS_URL`: one Redis shard per URL, in the same order (and count) on every "
        "process; the channel layer shards its channels and groups over them and the session streams, "
        "connection limits and tickets place each key by its owner ([redis.md](redis.md))",
        accepted="comma-separated distinct URLs, each " + url_form,
    )
    sentinels = env_optional_str(
        "REDIS_SENTINELS",
        meaning="instead of `REDIS_URL`: the Sentinels that watch the masters named in `REDIS_SENTINEL_MASTER`; "
        "every Redis client finds the master through them and follows a failover, which costs clients a "
        "resync, never an order ([redis.md](redis.md))",
        accepted="comma-separated `host:port` pairs",
    )
    sentinel_only = {
        "REDIS_SENTINEL_MASTER": env_optional_str(
            "REDIS_SENTINEL_MASTER",
            meaning="with `REDIS_SENTINELS` (which needs it): the master name(s) the Sentinels watch, one shard "
            "each, in the same order on every process",
            accepted="comma-separated distinct names",
        ),
        "REDIS_PASSWORD": env_optional_str(
            "REDIS_PASSWORD", meaning="with `REDIS_SENTINELS` only: the masters' password (a URL carries its own)"
        ),
        "REDIS_SENTINEL_PASSWORD": env_optional_str(
            "REDIS_SENTINEL_PASSWORD", meaning="with `REDIS_SENTINELS` only: the Sentinels' own password"
        ),
        "REDIS_DB": env_optional_str(
            "REDIS_DB",
            meaning="with `REDIS_SENTINELS` only: the database number on the masters (a URL carries its own)",
            shown_default="`0`",
            accepted="integer ≥ 0",
        ),
    }
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
        for dependent, value in sentinel_only.items():
            if value is not None:
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
    password = sentinel_only["REDIS_PASSWORD"]
    sentinel_password = sentinel_only["REDIS_SENTINEL_PASSWORD"]
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
