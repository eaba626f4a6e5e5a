"""Settings, read from the environment: docs/configuration.md lists every variable, generated
from the `meaning=` of its read here (and in config/env.py) by `manage.py export_protocol`.

Embedded default: SQLite and the in-memory channel layer, nothing else to run.
Production (SERVICE_MODE=production): PostgreSQL from DATABASE_URL, Redis (the channel layer and
the stores) from REDIS_URL, a real SECRET_KEY and DEBUG off, or the process refuses to start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from config.cors import host_origin_patterns
from config.env import (
    DECLARED,
    cache_for,
    database_from_url,
    env_bool,
    env_choice,
    env_decimal,
    env_int,
    env_list,
    env_optional_decimal,
    env_optional_int,
    env_optional_str,
    env_origins,
    env_read_elsewhere,
    env_redis_shards,
    env_str,
    process_role,
)

BASE_DIR = Path(__file__).resolve().parent.parent

SERVICE_MODE = env_choice(
    "SERVICE_MODE",
    ["development", "production"],
    default="development",
    meaning="`production` requires `SECRET_KEY` (32+ characters), `DEBUG` off, `ALLOWED_HOSTS`, `DATABASE_URL` "
    "and `REDIS_URL` (or `REDIS_URLS`, or `REDIS_SENTINELS`), or the process refuses to start; it also "
    "changes the defaults that say so on this page",
)
PRODUCTION = SERVICE_MODE == "production"

DEFAULT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env_str(
    "SECRET_KEY",
    default=DEFAULT_SECRET_KEY,
    meaning="signs sessions and session tokens; production needs a random value of 32+ characters",
    shown_default="a development key",
)
DEBUG = env_bool(
    "DEBUG",
    default=not PRODUCTION,
    meaning="Django's debug mode; production refuses to start with it on",
    shown_default="on in development, off in production",
)

if PRODUCTION:
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SERVICE_MODE=production needs SECRET_KEY set to a random value of 32+ characters.")
    if DEBUG:
        raise ImproperlyConfigured("SERVICE_MODE=production refuses to start with DEBUG on.")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"],
    meaning="the host names the service answers to (Django's `ALLOWED_HOSTS`); production needs it",
    shown_default="`localhost,127.0.0.1,[::1],testserver` in development, unset in production",
    accepted="comma-separated host names",
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("SERVICE_MODE=production needs ALLOWED_HOSTS (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS",
    default=[],
    meaning="origins Django's CSRF check trusts for the admin's forms (`https://trade.example.com` behind the "
    "TLS-terminating proxy)",
    accepted="comma-separated origins",
)

# Not "daphne": its app only swaps in an ASGI `runserver`, which nothing here uses (scripts/serve and
# deploy/ run daphne itself), and it imports Twisted, autobahn and pyOpenSSL into every process that
# sets Django up (a third of a second of CPU each: every manage.py command, every simulator worker).
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "channels",
    # Only its static files: Swagger UI for /api/docs/, served by the service itself (no CDN).
    "drf_spectacular_sidecar",
    "sessions_app",
    "simulator_app",
    "market_app",
]

MIDDLEWARE = [
    # First: a preflight is answered before anything else can answer it (or refuse it).
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_optional_str(
    "DATABASE_URL",
    meaning="parsed by dj-database-url: query parameters become connection options "
    "(`?sslmode=require&connect_timeout=5`; give it the bounded waits of [partitions.md](partitions.md)), a "
    "Unix socket directory goes percent-encoded in the host (`postgres://trading@%2Fvar%2Frun%2Fpostgresql/trading`); "
    "`sqlite:///relative.db` or `sqlite:////absolute/path.db`. Production needs PostgreSQL",
    shown_default="`sqlite:///db.sqlite3` (in the checkout)",
    accepted="`postgres://user:pass@host:5432/name` or `sqlite:///path`",
)
if PRODUCTION and not _database_url:
    raise ImproperlyConfigured("SERVICE_MODE=production needs DATABASE_URL (postgres://user:pass@host:5432/name).")
DATABASES = {
    "default": database_from_url(
        _database_url or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int(
            "DATABASE_CONN_MAX_AGE",
            default=60,
            minimum=0,
            meaning="with `DATABASE_POOL_MAX_SIZE=0` (or SQLite) only: seconds a thread keeps its connection; "
            "setting it while the PostgreSQL pool is on stops the process",
        ),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the daphne threads read while one writes; the timeout waits out short write locks.
    # Options in the URL's query string (?timeout=5) win.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        **DATABASES["default"].get("OPTIONS", {}),
    }
    # Tests run the simulator worker in-process, on threads of its own: an in-memory database
    # (shared cache, table locks without waiting) would refuse them. A file per test run instead.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"trading-simulator-test-{os.getpid()}.sqlite3")
    }
# PostgreSQL connections per process, bounded (docs/scaling.md, "The database"): under ASGI every
# HTTP request runs on a thread of its own, and persistent connections are per thread, so without a
# pool a burst of requests opens a connection each. The pool (psycopg_pool, Django's OPTIONS["pool"])
# lends at most DATABASE_POOL_MAX_SIZE; a thread past them waits DATABASE_POOL_TIMEOUT_S for one, then
# gets OperationalError (the standard `service_unavailable`). 0: no pool, persistent connections for
# DATABASE_CONN_MAX_AGE seconds, one per thread that uses the database.
# A worker needs 4: each of its loops borrows one per call on a thread of its own, and three are busy
# (lease renewals, the market's matching, the feed; docs/scaling.md).
_PROCESS_ROLE = process_role()
DATABASE_POOL_MAX_SIZE = env_int(
    "DATABASE_POOL_MAX_SIZE",
    default=4 if _PROCESS_ROLE == "simulator_worker" else 10,
    minimum=0,
    meaning="PostgreSQL connections one process holds at most, from a psycopg pool; a thread past them waits "
    "`DATABASE_POOL_TIMEOUT_S` and then gets `service_unavailable`. `0`: no pool, a persistent connection per "
    "thread that uses the database (under ASGI every HTTP request has a thread of its own, so that is "
    "unbounded). A worker needs 4: a thread for each of its three loops and the shared database thread. "
    "Sizing: [scaling.md](scaling.md#the-database)",
    shown_default="`10`, `4` in a simulator worker",
)
_DATABASE_POOL_MIN_SIZE = env_int(
    "DATABASE_POOL_MIN_SIZE",
    default=2,
    minimum=0,
    meaning="PostgreSQL connections the pool keeps open when idle (at most `DATABASE_POOL_MAX_SIZE`)",
)
_DATABASE_POOL_TIMEOUT_S = env_int(
    "DATABASE_POOL_TIMEOUT_S",
    default=2,
    minimum=1,
    meaning="how long a database call waits for a free (or, in an outage, any) pooled connection. Keep it under "
    "daphne's 5 s WebSocket connect timeout, so a handshake in an outage is refused with its code rather than "
    "dropped",
)
_DATABASE_APPLICATION_NAME = env_str(
    "DATABASE_APPLICATION_NAME",
    default=f"trading:{_PROCESS_ROLE}:{os.getpid()}",
    meaning="how the process's PostgreSQL connections show in `pg_stat_activity` (`trading:daphne:4242`, "
    "`trading:simulator_worker:4243`)",
    shown_default="`trading:<process>:<pid>`",
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Which process holds a connection, in pg_stat_activity (and so in the bound's test).
    _options.setdefault("application_name", _DATABASE_APPLICATION_NAME)
    if DATABASE_POOL_MAX_SIZE:
        if env_optional_int("DATABASE_CONN_MAX_AGE"):
            raise ImproperlyConfigured(
                "DATABASE_CONN_MAX_AGE keeps connections per thread, the pool per process: set "
                "DATABASE_POOL_MAX_SIZE=0 to use it, or leave it unset."
            )
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them (Django refuses both)
        _options["pool"] = {
            "min_size": min(_DATABASE_POOL_MIN_SIZE, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": _DATABASE_POOL_TIMEOUT_S,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every Redis the processes share, in shard order (docs/redis.md): REDIS_URL (one server),
# REDIS_URLS (several shards) or REDIS_SENTINELS + REDIS_SENTINEL_MASTER (Sentinel-managed masters).
REDIS_SHARDS = env_redis_shards()
if PRODUCTION and not REDIS_SHARDS:
    raise ImproperlyConfigured(
        "SERVICE_MODE=production needs REDIS_URL (or REDIS_URLS, or REDIS_SENTINELS): "
        "the in-memory channel layer cannot span processes."
    )
CHANNEL_LAYER_PREFIX = env_str(
    "CHANNEL_LAYER_PREFIX",
    default="asgi",
    meaning="Redis key prefix of the channel layer and the cache, to share a Redis between deployments",
)
# Connections each of the session app's Redis clients (stream buffer, connection limits, tickets) may
# hold per process (sessions_app/realtime/redis_clients.py). A reconnect storm keeps hundreds of
# handshakes in flight, each needing the stream and the limits: 8 left them waiting past their timeouts.
REDIS_POOL_SIZE = env_int(
    "REDIS_POOL_SIZE",
    default=64,
    minimum=1,
    meaning="connections per process (and per shard) for each of the service's own Redis clients (the session "
    "stream, the connection limits, the tickets); a command past them waits up to its timeout (2 to 5 s) for a "
    "free one",
)
# The channel-layer watchdog (docs/partitions.md): a server process whose probes through the channel
# layer (two a second, to itself) have not come back for this long sends its clients `shutdown` and
# refuses handshakes until one does, so no socket looks alive while its pushes stop. 0: off.
CHANNEL_LAYER_WATCHDOG_MS = env_int(
    "CHANNEL_LAYER_WATCHDOG_MS",
    default=10_000,
    minimum=0,
    meaning="a server process whose probes through the channel layer (two a second, to itself) have not come back "
    "for this long (Redis unreachable from its host) tells its clients `shutdown` (close 4012, reconnect "
    "elsewhere) and refuses handshakes with `service_unavailable` (4013) until one does; `0` off, else at least "
    "`2000` ([partitions.md](partitions.md))",
)
if 0 < CHANNEL_LAYER_WATCHDOG_MS < 2_000:
    raise ImproperlyConfigured("CHANNEL_LAYER_WATCHDOG_MS must be 0 (off) or at least 2000 (probes go every 500 ms)")

_REDIS_SOCKET_TIMEOUT_S = env_int(
    "REDIS_SOCKET_TIMEOUT_S",
    default=15,
    minimum=6,
    meaning="how long the channel layer waits on Redis: a publish, a subscription's confirmation, a new connection",
)
if REDIS_SHARDS:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub, our own layer to the Channels specification (sessions_app/realtime/redis_layer.py,
            # docs/redis.md): each process subscribes once per group its connections are in and fans a
            # group's message out itself; what the layer drops on a Redis restart the session streams
            # repair (docs/guarantees.md).
            "BACKEND": "sessions_app.realtime.redis_layer.RedisPubSubLayer",
            "CONFIG": {"shards": REDIS_SHARDS, "prefix": CHANNEL_LAYER_PREFIX, "timeout": _REDIS_SOCKET_TIMEOUT_S},
        }
    }
    # The login throttles' counts: on the first shard (Django's RedisCache reads a second
    # LOCATION as a replica, not a shard), through its Sentinels when it has them.
    CACHES = {"default": cache_for(REDIS_SHARDS[0], key_prefix=CHANNEL_LAYER_PREFIX)}
else:
    # One process only (sessions_app/realtime/memory_layer.py: in memory, swept once a second).
    CHANNEL_LAYERS = {"default": {"BACKEND": "sessions_app.realtime.memory_layer.EmbeddedChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# Django's own list unless the operator names others (Argon2 or scrypt first, say): the first hashes
# new passwords, the rest still check stored hashes, and a login upgrades those to the first.
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    default=global_settings.PASSWORD_HASHERS,
    meaning="the password hashers (Django's `PASSWORD_HASHERS`): the first hashes new passwords, the others "
    "still check stored hashes (a login upgrades them to the first); a fast one such as MD5 is for test "
    "servers only",
    shown_default="Django's (PBKDF2 first)",
    accepted="comma-separated dotted paths of hasher classes",
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# The browser client library is the npm package in tools/js-client; its sources are also the
# console's, served as they are under trading/client/.
STATICFILES_DIRS = [("trading/client", BASE_DIR / "tools" / "js-client" / "src")]
STATIC_ROOT = Path(
    env_str(
        "STATIC_ROOT",
        default=str(BASE_DIR / "staticfiles"),
        meaning="where `collectstatic` writes and the proxy serves from",
        shown_default="`staticfiles/` in the checkout",
        accepted="a directory",
    )
)
SERVE_STATIC = env_bool(
    "SERVE_STATIC",
    default=not PRODUCTION,
    meaning="on: daphne serves the console's, the admin's and Swagger UI's files itself, by their plain names. "
    "Off: pages name `collectstatic`'s content-hashed copies (`console.3f1a9c0b2d4e.js`, its `import` of "
    "`./client/connection-manager.js` rewritten to the hashed name too) for the proxy to serve from `STATIC_ROOT` and "
    "browsers to keep for good; daphne refuses to start until `collectstatic` has written the manifest",
    shown_default="on in development, off in production",
)
# daphne serves static files from the apps by their own names; a proxy serves collectstatic's
# output, under content-hashed names (console.3f1a9c0b2d4e.js) it may cache for good.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if SERVE_STATIC
        else "config.staticfiles.HashedStaticFilesStorage"
    },
}

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool(
    "SECURE_COOKIES",
    default=PRODUCTION,
    meaning="admin cookies only over HTTPS (`false` to try production over plain HTTP)",
    shown_default="on in production, off in development",
)

if env_bool(
    "SECURE_PROXY_SSL_HEADER",
    default=False,
    meaning="on behind a proxy that terminates TLS ([deployment.md](deployment.md)): a request with "
    "`X-Forwarded-Proto: https` counts as HTTPS (so HSTS is sent)",
):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS on HTTPS responses only (Django never sends it over plain HTTP), so it takes effect once TLS does.
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS",
    default=31_536_000 if PRODUCTION else 0,
    minimum=0,
    meaning="HTTP Strict Transport Security on HTTPS responses (Django never sends it over plain HTTP, so it "
    "starts with TLS at the proxy and `SECURE_PROXY_SSL_HEADER=true`); `0` none",
    shown_default="`31536000` in production, `0` in development",
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    default=PRODUCTION,
    meaning="HSTS covers the subdomains too",
    shown_default="on in production, off in development",
)
SECURE_HSTS_PRELOAD = env_bool(
    "SECURE_HSTS_PRELOAD",
    default=False,
    meaning="HSTS asks for preloading; preloading commits the whole registrable domain in browsers' built-in "
    "lists, the domain owner's call",
)
# Off by default: the TLS-terminating proxy redirects http:// to https:// for clients, while daphne
# itself is reached over plain HTTP on loopback by that proxy, the health check (scripts/wait-ready)
# and the metrics scraper, which a redirect would break.
SECURE_SSL_REDIRECT = env_bool(
    "SECURE_SSL_REDIRECT",
    default=False,
    meaning="daphne redirects plain HTTP to HTTPS; off because the TLS-terminating proxy redirects clients, while "
    "the proxy, the health check and the metrics scraper reach daphne over plain HTTP",
)
SILENCED_SYSTEM_CHECKS = [
    # security.W008 (SECURE_SSL_REDIRECT off): the proxy redirects, see above.
    *(["security.W008"] if not SECURE_SSL_REDIRECT else []),
    # security.W021 (no HSTS preload): preloading commits the whole registrable domain in browsers'
    # built-in lists, a decision for the domain's owner (SECURE_HSTS_PRELOAD=true), not a default.
    *(["security.W021"] if not SECURE_HSTS_PRELOAD else []),
]

_RATE = "`N/s`, `N/min`, `N/hour` or `N/day`"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["sessions_app.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "sessions_app.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str(
            "LOGIN_THROTTLE_RATE",
            default="10/min",
            meaning="login attempts per client address (a client's own `X-Forwarded-For` is ignored; daphne's "
            "`--proxy-headers` supplies the address behind the proxy)",
            accepted=_RATE,
        ),
        "login_user": env_str(
            "LOGIN_USER_THROTTLE_RATE", default="5/min", meaning="login attempts per username", accepted=_RATE
        ),
        "ticket": env_str("TICKET_THROTTLE_RATE", default="30/min", meaning="socket tickets per user", accepted=_RATE),
    },
    # Throttle by REMOTE_ADDR only: behind the proxy daphne's --proxy-headers already put the
    # forwarded address there, and DRF's default would trust any client's own X-Forwarded-For.
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": None,
}

# --- Session protocol (documented in docs/protocol.md) ---
WS_HEARTBEAT_INTERVAL_MS = env_int(
    "WS_HEARTBEAT_INTERVAL_MS", default=15_000, minimum=100, meaning="how often clients beat (sent in `connected`)"
)
WS_HEARTBEAT_TIMEOUT_MS = env_int(
    "WS_HEARTBEAT_TIMEOUT_MS",
    default=45_000,
    minimum=200,
    meaning="silence after which the server sends `timeout` and closes 4008; larger than `WS_HEARTBEAT_INTERVAL_MS`",
)
if WS_HEARTBEAT_TIMEOUT_MS <= WS_HEARTBEAT_INTERVAL_MS:
    raise ImproperlyConfigured("WS_HEARTBEAT_TIMEOUT_MS must be larger than WS_HEARTBEAT_INTERVAL_MS.")
WS_MAX_MESSAGE_BYTES = env_int(
    "WS_MAX_MESSAGE_BYTES",
    default=65_536,
    minimum=1024,
    meaning="larger messages get `message_too_large`; run daphne with `--websocket-max-message-size` and "
    "`--websocket-max-frame-size` at twice this (as `scripts/serve` and `deploy/` do), so it cuts off only what "
    "is far larger (the connection is failed, 1009 or a reset)",
)
# Per connection: a burst, then a sustained rate; refusals beyond the abuse rule close the socket (4029).
WS_RATE_LIMIT_PER_S = env_int(
    "WS_RATE_LIMIT_PER_S",
    default=20,
    minimum=1,
    meaning="client messages per second one connection may send after its burst; more get `error` `rate_limited`",
)
WS_RATE_LIMIT_BURST = env_int(
    "WS_RATE_LIMIT_BURST", default=40, minimum=1, meaning="the burst of client messages a connection may send at once"
)
WS_ACK_RATE_PER_S = env_int(
    "WS_ACK_RATE_PER_S",
    default=2000,
    minimum=1,
    meaning="`market_ack` messages per second one connection may send (a budget of their own, as a lock-step "
    "backtest acknowledges every bar); more get `error` `rate_limited`",
)
WS_RATE_LIMIT_ABUSE_COUNT = env_int(
    "WS_RATE_LIMIT_ABUSE_COUNT",
    default=100,
    minimum=1,
    meaning="that many `rate_limited` refusals within `WS_RATE_LIMIT_ABUSE_WINDOW_S` close the connection with 4029",
)
WS_RATE_LIMIT_ABUSE_WINDOW_S = env_int(
    "WS_RATE_LIMIT_ABUSE_WINDOW_S", default=10, minimum=1, meaning="the window `WS_RATE_LIMIT_ABUSE_COUNT` counts in"
)
# Concurrent sockets per user and per client address (cluster-wide with Redis); 0 = unlimited.
_LIMIT = (
    ", across all processes (Redis); more are refused with `too_many_connections` and 4030; a device's replaced "
    "connection does not count; `0` unlimited. If Redis is unreachable the limit is not enforced (a warning is logged)"
)
WS_MAX_CONNECTIONS_PER_USER = env_int(
    "WS_MAX_CONNECTIONS_PER_USER", default=20, minimum=0, meaning="open sockets per user" + _LIMIT
)
WS_MAX_CONNECTIONS_PER_IP = env_int(
    "WS_MAX_CONNECTIONS_PER_IP",
    default=200,
    minimum=0,
    meaning="open sockets per client address (behind the proxy, the forwarded one)" + _LIMIT,
)
# Admission control (sessions_app/realtime/admission.py): past this many handshakes under way a new
# one is refused at once with server_busy and a retry slot; 0 admits every handshake.
WS_MAX_HANDSHAKES_IN_FLIGHT = env_int(
    "WS_MAX_HANDSHAKES_IN_FLIGHT",
    default=256,
    minimum=0,
    meaning="handshakes one process works on at once; the next is refused at once with `server_busy` (close "
    "4013) and a `retryAfterMs` slot; `0` admits all",
)
# The rate retry hints assume before the process has measured a faster one (handshakes per second).
WS_ADMISSION_MIN_RATE_PER_S = env_int(
    "WS_ADMISSION_MIN_RATE_PER_S",
    default=100,
    minimum=1,
    meaning="handshakes per second the retry slots and the shutdown spread assume until the process has measured "
    "a faster rate",
)
# A ticket (POST /api/auth/ticket/) opens one socket within this many seconds, instead of the token in the URL.
WS_TICKET_TTL_S = env_int(
    "WS_TICKET_TTL_S",
    default=30,
    minimum=1,
    maximum=600,
    meaning="lifetime of a single-use socket ticket (`POST /api/auth/ticket/`, then `?ticket=` instead of the token "
    "in the URL)",
)
# None: an Origin whose host is in ALLOWED_HOSTS; "*": any origin.
WS_ALLOWED_ORIGINS = env_origins(
    "WS_ALLOWED_ORIGINS",
    default=[],
    meaning="the socket's Origin check (a browser always sends Origin): the origins a page may open the socket "
    "from ([frontend.md](frontend.md#a-frontend-on-its-own-origin))",
    shown_default="unset: origins whose host is in `ALLOWED_HOSTS`",
)
AUTH_TOKEN_TTL_S = env_int(
    "AUTH_TOKEN_TTL_S",
    default=24 * 3600,
    minimum=60,
    meaning="access token lifetime; a socket whose token expires is closed (4001) unless it renewed it with "
    "`refresh_token`",
)
SESSION_TTL_S = env_int("SESSION_TTL_S", default=8 * 3600, minimum=1, meaning="session lifetime (`expiresAt`)")
PRESENCE_FLUSH_INTERVAL_S = env_int(
    "PRESENCE_FLUSH_INTERVAL_S",
    default=10,
    minimum=1,
    meaning="how often last-seen times are written (in one batch), and each process checks that its sockets' "
    "tokens were not revoked (the bound when a revocation's event is lost)",
)
# The session stream (docs/guarantees.md): numbered pushes kept for replay on `reconnect`,
# in Redis when REDIS_URL is set (shared by every process), else in process memory.
SESSION_STREAM_MAX_MESSAGES = env_int(
    "SESSION_STREAM_MAX_MESSAGES",
    default=256,
    minimum=1,
    meaning="numbered pushes kept per session for replay on `reconnect` (Redis in production, memory embedded; "
    "[guarantees.md](guarantees.md))",
)
SESSION_STREAM_TTL_S = env_int(
    "SESSION_STREAM_TTL_S",
    default=3600,
    minimum=10,
    meaning="how long a session's pushes are kept for replay after the stream's last use",
)
SESSION_STREAM_CHECK_INTERVAL_S = env_int(
    "SESSION_STREAM_CHECK_INTERVAL_S",
    default=5,
    minimum=1,
    meaning="how often each process compares its connections with their streams' heads, sending a push the "
    "channel layer lost",
)
SHUTDOWN_GRACE_MS = env_int(
    "SHUTDOWN_GRACE_MS", default=3_000, minimum=0, meaning="on SIGTERM, how long to wait for clients to close"
)
SHUTDOWN_RETRY_AFTER_MIN_MS = env_int(
    "SHUTDOWN_RETRY_AFTER_MIN_MS",
    default=1_000,
    minimum=0,
    meaning="`shutdown.reconnectAfterMs` is uniform from this minimum over at least the range up to "
    "`SHUTDOWN_RETRY_AFTER_MAX_MS`, longer when the process holds more connections than it has admitted in a "
    "second: over (connections / fastest admissions per second seen)",
)
SHUTDOWN_RETRY_AFTER_MAX_MS = env_int(
    "SHUTDOWN_RETRY_AFTER_MAX_MS",
    default=5_000,
    minimum=0,
    meaning="the end of `shutdown.reconnectAfterMs`'s least range; not below `SHUTDOWN_RETRY_AFTER_MIN_MS`",
)
SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS = env_int(
    "SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS",
    default=30_000,
    minimum=0,
    meaning="the longest the spread of `shutdown.reconnectAfterMs` may get",
)
if SHUTDOWN_RETRY_AFTER_MAX_MS < SHUTDOWN_RETRY_AFTER_MIN_MS:
    raise ImproperlyConfigured("SHUTDOWN_RETRY_AFTER_MAX_MS must not be below SHUTDOWN_RETRY_AFTER_MIN_MS.")

# --- CORS for the HTTP API (django-cors-headers; docs/frontend.md "A frontend on its own origin") ---
# Unset: the origins the socket accepts (config/cors.py). Only /api/: the admin stays same-origin.
_cors_origins = env_origins(
    "CORS_ALLOWED_ORIGINS",
    default=WS_ALLOWED_ORIGINS,
    meaning="who may call `/api/` from another origin (django-cors-headers, without credentials; the admin stays "
    "same-origin; [frontend.md](frontend.md#a-frontend-on-its-own-origin))",
    shown_default="unset: what the socket accepts (`WS_ALLOWED_ORIGINS`, else origins whose host is in "
    "`ALLOWED_HOSTS`)",
)
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_ALL_ORIGINS = "*" in _cors_origins
CORS_ALLOWED_ORIGINS = [origin for origin in _cors_origins if origin != "*"]
CORS_ALLOWED_ORIGIN_REGEXES = [] if _cors_origins else host_origin_patterns(ALLOWED_HOSTS)
# The API authenticates with bearer tokens, never cookies: no credentialed requests.
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["GET", "POST"]
CORS_ALLOW_HEADERS = ["authorization", "content-type"]
CORS_EXPOSE_HEADERS = ["Retry-After"]  # a throttled login says when to try again
# How long a browser may reuse a preflight's answer (Chromium caps it at 7200).
CORS_PREFLIGHT_MAX_AGE = env_int(
    "CORS_PREFLIGHT_MAX_AGE",
    default=86_400,
    minimum=0,
    meaning="seconds a browser may reuse a preflight's answer (Chromium caps it at two hours)",
)

# --- Simulators (docs/operations.md "Simulator workers") ---
SIMULATOR_RUNNER = env_choice(
    "SIMULATOR_RUNNER",
    ["inprocess", "worker"],
    default="worker" if PRODUCTION else "inprocess",
    meaning="where simulators run: inside each daphne process, or only in `manage.py simulator_worker` processes",
    shown_default="`inprocess` in development, `worker` in production",
)
SIMULATOR_TICK_MS = env_int("SIMULATOR_TICK_MS", default=1_000, minimum=10, meaning="a running simulator's step")
SIMULATOR_LEASE_TTL_MS = env_int(
    "SIMULATOR_LEASE_TTL_MS",
    default=10_000,
    minimum=500,
    meaning="a worker's lease on its simulators; a dead worker's simulators are adopted within this plus "
    "`SIMULATOR_LEASE_RENEW_MS`",
)
SIMULATOR_LEASE_RENEW_MS = env_int(
    "SIMULATOR_LEASE_RENEW_MS",
    default=2_000,
    minimum=100,
    meaning="how often a worker renews its lease (and polls for orphans); at most half of `SIMULATOR_LEASE_TTL_MS`",
)
if SIMULATOR_LEASE_RENEW_MS * 2 > SIMULATOR_LEASE_TTL_MS:
    raise ImproperlyConfigured("SIMULATOR_LEASE_RENEW_MS must be at most half of SIMULATOR_LEASE_TTL_MS.")
SIMULATOR_ORPHAN_GRACE_MS = env_int(
    "SIMULATOR_ORPHAN_GRACE_MS",
    default=15_000,
    minimum=0,
    meaning="how much longer a simulator may have no worker (lease lapsed, or never picked up) before it shows `error`",
)
SIMULATOR_IDLE_TIMEOUT_S = env_int(
    "SIMULATOR_IDLE_TIMEOUT_S",
    default=1_800,
    minimum=0,
    meaning="a running simulator whose user has had no connection this long stops itself; `0` never",
)
SIMULATOR_WORKER_CAPACITY = env_int(
    "SIMULATOR_WORKER_CAPACITY", default=500, minimum=1, meaning="simulators one worker runs at most"
)

# --- Market (docs/operations.md "Market data and paper trading") ---
MARKET_TICK_MS = env_int("MARKET_TICK_MS", default=500, minimum=10, meaning="one tick of the shared price feed")
MARKET_SOURCE = env_choice(
    "MARKET_SOURCE",
    ["random", "replay"],
    default="random",
    meaning="`random` (geometric Brownian motion per instrument) or `replay` (a CSV of bars, "
    "[operations.md](operations.md#replay-mode))",
)
MARKET_SEED = env_optional_int(
    "MARKET_SEED",
    meaning="the random walk's seed: the same seed replays the same prices",
    shown_default="unset: chosen when the feed first starts, kept in the database",
)
MARKET_TIME_SCALE = env_int(
    "MARKET_TIME_SCALE",
    default=60,
    minimum=1,
    meaning="market seconds per real second (prices move like a minute per second)",
)
MARKET_REPLAY_FILE = env_str(
    "MARKET_REPLAY_FILE",
    default=str(BASE_DIR / "market_app" / "data" / "example_bars.csv"),
    meaning="the bars `replay` plays, in a loop; with `MARKET_SOURCE=replay` it must be a file",
    shown_default="`market_app/data/example_bars.csv`",
    accepted="a file path",
)
if MARKET_SOURCE == "replay" and not Path(MARKET_REPLAY_FILE).is_file():
    raise ImproperlyConfigured(f"MARKET_REPLAY_FILE {MARKET_REPLAY_FILE!r} is not a file (MARKET_SOURCE=replay).")
MARKET_STARTING_CASH = env_int(
    "MARKET_STARTING_CASH", default=100_000, minimum=0, meaning="a new trading account's cash"
)
MARKET_MAX_STARTING_CASH = env_int(
    "MARKET_MAX_STARTING_CASH",
    default=10_000_000,
    minimum=1,
    meaning="the most starting cash a user may give an account they open",
)
MARKET_ACCOUNTS_PER_USER = env_int(
    "MARKET_ACCOUNTS_PER_USER", default=10, minimum=1, meaning="how many open accounts a user may have at once"
)
# The default commission schedule of an account (market_app.fees; each account may set its own in the admin),
# times the simulator profile's fee factor (ideal 0, realistic 1, harsh 2). By default a per-share schedule
# as many brokers charge for US shares: 0.005 a share, at least 1 an order.
MARKET_COMMISSION_PER_SHARE = env_decimal(
    "MARKET_COMMISSION_PER_SHARE",
    default="0.005",
    meaning="the default commission per share (or unit) of an account without its own (admin: Accounts), times "
    "the profile's fee factor",
)
MARKET_COMMISSION_MINIMUM = env_decimal(
    "MARKET_COMMISSION_MINIMUM", default="1", meaning="the default minimum commission per order"
)
MARKET_COMMISSION_BPS = env_decimal(
    "MARKET_COMMISSION_BPS", default="0", meaning="the default commission in basis points of the notional"
)
# A margin account's requirements (market_app.margin), Regulation T's: each instrument may set its own.
MARKET_INITIAL_MARGIN = env_decimal(
    "MARKET_INITIAL_MARGIN",
    default="0.5",
    meaning="the share of an opening order's value a margin account's equity must cover (0.5: buying power 2x)",
)
MARKET_MAINTENANCE_MARGIN_LONG = env_decimal(
    "MARKET_MAINTENANCE_MARGIN_LONG", default="0.25", meaning="the share of a long's value a margin account must keep"
)
MARKET_BORROW_RATE = env_decimal(
    "MARKET_BORROW_RATE",
    default="0.03",
    meaning="a short's yearly borrow fee of its value for an instrument without its own, a 360th a market day",
)
MARKET_MARGIN_INTEREST_RATE = env_decimal(
    "MARKET_MARGIN_INTEREST_RATE",
    default="0.08",
    meaning="the yearly interest on a margin account's borrowed cash (below zero), a 360th a market day",
)
MARKET_SHORT_MIN_EQUITY = env_decimal(
    "MARKET_SHORT_MIN_EQUITY",
    default="2000",
    meaning="the equity a margin account needs to open a short (Alpaca's and FINRA's 2,000)",
)
MARKET_MARGIN_CALL_GRACE_S = env_int(
    "MARKET_MARGIN_CALL_GRACE_S",
    default=900,
    minimum=0,
    meaning="market seconds a margin call has to be met before the account's positions are liquidated",
)
MARKET_MAINTENANCE_MARGIN_SHORT = env_decimal(
    "MARKET_MAINTENANCE_MARGIN_SHORT", default="0.3", meaning="the share of a short's value a margin account must keep"
)
# The operator's caps on every account's risk limits (market_app.risk): an order is held to the lower of
# its account's limit and the cap, and a user cannot set a limit above it. Unset: no cap.
RISK_MAX_ORDER_VALUE_CAP = env_optional_decimal(
    "RISK_MAX_ORDER_VALUE_CAP", meaning="the most an order may be worth (quantity x price), whatever its account sets"
)
RISK_MAX_POSITION_VALUE_CAP = env_optional_decimal(
    "RISK_MAX_POSITION_VALUE_CAP",
    meaning="the most one symbol's position and open buys may be worth, whatever the account sets",
)
RISK_MAX_OPEN_ORDERS_CAP = env_optional_int(
    "RISK_MAX_OPEN_ORDERS_CAP", meaning="the most open orders an account may have, whatever it sets"
)
RISK_MAX_LEVERAGE_CAP = env_optional_decimal(
    "RISK_MAX_LEVERAGE_CAP",
    meaning="the most an account's positions and open buys may be worth over its equity, whatever it sets",
)
RISK_DAILY_LOSS_LIMIT_CAP = env_optional_decimal(
    "RISK_DAILY_LOSS_LIMIT_CAP",
    meaning="the most an account's equity may fall in a market day before its orders are canceled and new ones "
    "refused until the next, whatever it sets",
)
MARKET_DAY_TICKS = env_int(
    "MARKET_DAY_TICKS",
    default=780,
    minimum=1,
    meaning="feed ticks in a simulated trading day (when `day` orders expire)",
)
# Flow control (docs/protocol.md): a client that acknowledges ticks (`market_ack`) gets at most this
# many unacknowledged `exchange_data`; past them its ticks are merged until it acknowledges.
MARKET_FLOW_WINDOW = env_int(
    "MARKET_FLOW_WINDOW",
    default=20,
    minimum=2,
    maximum=1000,
    meaning="a client that asked for flow control (`subscribe_market` with `flowControl`) gets at most this many "
    "`exchange_data` it has not acknowledged (`market_ack`); past them its ticks are merged, the newest per "
    "symbol, until it acknowledges",
)
EQUITY_SAMPLE_INTERVAL_S = env_int(
    "EQUITY_SAMPLE_INTERVAL_S",
    default=10,
    minimum=1,
    meaning="seconds of feed time between two equity samples of a user whose simulator runs (the equity curve)",
)
EQUITY_SAMPLE_RETENTION_DAYS = env_int(
    "EQUITY_SAMPLE_RETENTION_DAYS",
    default=30,
    minimum=1,
    meaning="equity samples older than this are deleted (about hourly, by the workers)",
)
# Datasets of bars (market_app.datasets, docs/datasets.md): what one upload may hold.
DATASET_MAX_BYTES = env_int(
    "DATASET_MAX_BYTES",
    default=20_000_000,
    minimum=1_000,
    meaning="the largest bar file one dataset upload may be (a larger one is refused with 413 `dataset_too_large`)",
)
DATASET_MAX_BARS = env_int(
    "DATASET_MAX_BARS",
    default=500_000,
    minimum=1,
    meaning="the most bars one dataset may hold (more are refused with 413 `dataset_too_large`)",
)
DATASETS_PER_USER = env_int(
    "DATASETS_PER_USER",
    default=20,
    minimum=0,
    meaning="the datasets one user may keep (another upload is refused with 409 `dataset_limit`)",
)

METRICS_TOKEN = env_optional_str(
    "METRICS_TOKEN", meaning="`/metrics` then answers only `Authorization: Bearer <token>`"
)
METRICS_ALLOWED_IPS = env_list(
    "METRICS_ALLOWED_IPS",
    default=["127.0.0.1", "::1"],
    meaning="without `METRICS_TOKEN`, the client addresses `/metrics` answers",
    accepted="comma-separated addresses",
)
env_read_elsewhere(
    "PROMETHEUS_MULTIPROC_DIR",
    meaning="a directory shared by the processes of a host (emptied at boot), so `/metrics` sums them, workers "
    "included; read by prometheus_client itself, so it must be in the environment",
    accepted="a directory",
)

LOG_LEVEL = env_choice(
    "LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO", meaning="the root logger's level"
)
LOG_FORMAT = env_choice(
    "LOG_FORMAT",
    ["json", "plain"],
    default="json" if PRODUCTION else "plain",
    meaning="JSON lines carry `connectionId`, `userId`, `deviceId`, `sessionId` and the message's `requestId` on "
    "every line about a connection; tokens are redacted from every line",
    shown_default="`json` in production, `plain` in development",
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "sessions_app.realtime.logs.ContextFilter"}},
    "formatters": {
        "json": {"()": "sessions_app.realtime.logs.JsonFormatter"},
        "plain": {
            "()": "sessions_app.realtime.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's own console handler (plain text, DEBUG only) for its loggers.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.channels.server": {"level": "WARNING"},
    },
}

env_read_elsewhere(
    "DJANGO_SETTINGS_MODULE",
    meaning="Django's: the settings module; `manage.py` and `config/asgi.py` set it when it is unset",
    shown_default="`config.settings`",
    accepted="a module path",
)
env_read_elsewhere(
    "CI",
    meaning="`true` (as `.ci/run` sets it): `manage.py export_protocol --check` fails when a validator it needs "
    "(Node, for AsyncAPI's parser) is missing instead of skipping it, and tests that need PostgreSQL, Redis or "
    "chromium fail instead of skipping",
    accepted="`true`",
)

# Every variable declared above and in config/env.py, for docs/configuration.md (manage.py export_protocol).
ENVIRONMENT_VARIABLES = list(DECLARED.values())
