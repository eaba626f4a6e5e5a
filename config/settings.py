"""Settings, read from the environment (see README "Configuration").

Embedded default: SQLite and the in-memory channel layer, nothing else to run.
Production (SERVICE_MODE=production): PostgreSQL from DATABASE_URL, channels-redis
from REDIS_URL, a real SECRET_KEY and DEBUG off, or the process refuses to start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.cors import host_origin_patterns
from config.env import (
    cache_for,
    channel_layer_host,
    database_from_url,
    env_bool,
    env_choice,
    env_decimal,
    env_int,
    env_list,
    env_optional_int,
    env_optional_str,
    env_origins,
    env_redis_shards,
    env_str,
    process_role,
)

BASE_DIR = Path(__file__).resolve().parent.parent

SERVICE_MODE = env_choice("SERVICE_MODE", ["development", "production"], default="development")
PRODUCTION = SERVICE_MODE == "production"

DEFAULT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

if PRODUCTION:
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SERVICE_MODE=production needs SECRET_KEY set to a random value of 32+ characters.")
    if DEBUG:
        raise ImproperlyConfigured("SERVICE_MODE=production refuses to start with DEBUG on.")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("SERVICE_MODE=production needs ALLOWED_HOSTS (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
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
    "sessions_app.realtime",
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

_database_url = env_optional_str("DATABASE_URL")
if PRODUCTION and not _database_url:
    raise ImproperlyConfigured("SERVICE_MODE=production needs DATABASE_URL (postgres://user:pass@host:5432/name).")
DATABASES = {
    "default": database_from_url(
        _database_url or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=60, minimum=0),
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
# A worker needs 4: a thread for each of its three loops and the shared database thread.
_PROCESS_ROLE = process_role()
DATABASE_POOL_MAX_SIZE = env_int(
    "DATABASE_POOL_MAX_SIZE", default=4 if _PROCESS_ROLE == "simulator_worker" else 10, minimum=0
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Which process holds a connection, in pg_stat_activity (and so in the bound's test).
    _options.setdefault(
        "application_name", env_str("DATABASE_APPLICATION_NAME", default=f"trading:{_PROCESS_ROLE}:{os.getpid()}")
    )
    if DATABASE_POOL_MAX_SIZE:
        if env_optional_int("DATABASE_CONN_MAX_AGE"):
            raise ImproperlyConfigured(
                "DATABASE_CONN_MAX_AGE keeps connections per thread, the pool per process: set "
                "DATABASE_POOL_MAX_SIZE=0 to use it, or leave it unset."
            )
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them (Django refuses both)
        _options["pool"] = {
            "min_size": min(env_int("DATABASE_POOL_MIN_SIZE", default=2, minimum=0), DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": env_int("DATABASE_POOL_TIMEOUT_S", default=2, minimum=1),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_optional_str("REDIS_URL")
# Every Redis the processes share, in shard order (docs/redis.md): REDIS_URL (one server),
# REDIS_URLS (several shards) or REDIS_SENTINELS + REDIS_SENTINEL_MASTER (Sentinel-managed masters).
REDIS_SHARDS = env_redis_shards()
if PRODUCTION and not REDIS_SHARDS:
    raise ImproperlyConfigured(
        "SERVICE_MODE=production needs REDIS_URL (or REDIS_URLS, or REDIS_SENTINELS): "
        "the in-memory channel layer cannot span processes."
    )
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", default="asgi")
# Connections each of the session app's Redis clients (stream buffer, connection limits, tickets) may
# hold per process (sessions_app/realtime/redis_clients.py). A reconnect storm keeps hundreds of
# handshakes in flight, each needing the stream and the limits: 8 left them waiting past their timeouts.
REDIS_POOL_SIZE = env_int("REDIS_POOL_SIZE", default=64, minimum=1)
# The channel layer's own connections per process and Redis host: calls past them wait (up to the
# timeout) for one to be free, rather than fail as redis-py's own pool does past 100.
CHANNEL_LAYER_POOL_SIZE = env_int("CHANNEL_LAYER_POOL_SIZE", default=100, minimum=2)
CHANNEL_LAYER_POOL_TIMEOUT_S = env_int("CHANNEL_LAYER_POOL_TIMEOUT_S", default=10, minimum=1)
# The channel-layer watchdog (docs/partitions.md): a server process whose reader has not finished a read
# from Redis for this long (a quiet read returns within 2 s) sends its clients `shutdown` and refuses
# handshakes until a read succeeds again, so no socket looks alive while its pushes stop. 0: off.
CHANNEL_LAYER_WATCHDOG_MS = env_int("CHANNEL_LAYER_WATCHDOG_MS", default=10_000, minimum=0)
if 0 < CHANNEL_LAYER_WATCHDOG_MS < 3_000:
    raise ImproperlyConfigured("CHANNEL_LAYER_WATCHDOG_MS must be 0 (off) or at least 3000: a quiet read takes 2 s")

if REDIS_SHARDS:
    # redis-py 8 times reads out after 5 s by default, exactly channels-redis's blocking
    # BZPOPMIN: every idle receive failed and closed the socket (channels_redis#422).
    _REDIS_SOCKET_TIMEOUT_S = env_int("REDIS_SOCKET_TIMEOUT_S", default=15, minimum=6)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "sessions_app.realtime.redis_layer.RedisLayer",
            "CONFIG": {
                # One channels-redis host per shard (its `hosts` sharding), in the same order.
                "hosts": [channel_layer_host(shard, socket_timeout=_REDIS_SOCKET_TIMEOUT_S) for shard in REDIS_SHARDS],
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", default=1000, minimum=10),
                "expiry": env_int("CHANNEL_LAYER_EXPIRY_S", default=60, minimum=1),
            },
        }
    }
    # The login throttles' counts: on the first shard (Django's RedisCache reads a second
    # LOCATION as a replica, not a shard), through its Sentinels when it has them.
    CACHES = {"default": cache_for(REDIS_SHARDS[0], key_prefix=CHANNEL_LAYER_PREFIX)}
else:
    # One process only (sessions_app/realtime/memory_layer.py: Channels' in-memory layer, swept once a second).
    CHANNEL_LAYERS = {"default": {"BACKEND": "sessions_app.realtime.memory_layer.EmbeddedChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
SERVE_STATIC = env_bool("SERVE_STATIC", default=not PRODUCTION)
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

# Admin cookies only over HTTPS in production (set SECURE_COOKIES=false to test over plain HTTP).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=PRODUCTION)

# Behind a proxy that terminates TLS (see README "Production").
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS on HTTPS responses only (Django never sends it over plain HTTP), so it takes effect once TLS does.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# Off by default: the TLS-terminating proxy redirects http:// to https:// for clients, while daphne
# itself is reached over plain HTTP on loopback by that proxy, the health check (scripts/wait-ready)
# and the metrics scraper, which a redirect would break.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SILENCED_SYSTEM_CHECKS = [
    # security.W008 (SECURE_SSL_REDIRECT off): the proxy redirects, see above.
    *(["security.W008"] if not SECURE_SSL_REDIRECT else []),
    # security.W021 (no HSTS preload): preloading commits the whole registrable domain in browsers'
    # built-in lists, a decision for the domain's owner (SECURE_HSTS_PRELOAD=true), not a default.
    *(["security.W021"] if not SECURE_HSTS_PRELOAD else []),
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["sessions_app.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "sessions_app.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("LOGIN_THROTTLE_RATE", default="10/min"),
        "login_user": env_str("LOGIN_USER_THROTTLE_RATE", default="5/min"),
        "ticket": env_str("TICKET_THROTTLE_RATE", default="30/min"),
    },
    # Throttle by REMOTE_ADDR only: behind the proxy daphne's --proxy-headers already put the
    # forwarded address there, and DRF's default would trust any client's own X-Forwarded-For.
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": None,
}

# --- Session protocol (documented in docs/protocol.md) ---
WS_HEARTBEAT_INTERVAL_MS = env_int("WS_HEARTBEAT_INTERVAL_MS", default=15_000, minimum=100)
WS_HEARTBEAT_TIMEOUT_MS = env_int("WS_HEARTBEAT_TIMEOUT_MS", default=45_000, minimum=200)
if WS_HEARTBEAT_TIMEOUT_MS <= WS_HEARTBEAT_INTERVAL_MS:
    raise ImproperlyConfigured("WS_HEARTBEAT_TIMEOUT_MS must be larger than WS_HEARTBEAT_INTERVAL_MS.")
WS_MAX_MESSAGE_BYTES = env_int("WS_MAX_MESSAGE_BYTES", default=65_536, minimum=1024)
# Per connection: a burst, then a sustained rate; refusals beyond the abuse rule close the socket (4029).
WS_RATE_LIMIT_PER_S = env_int("WS_RATE_LIMIT_PER_S", default=20, minimum=1)
WS_RATE_LIMIT_BURST = env_int("WS_RATE_LIMIT_BURST", default=40, minimum=1)
WS_RATE_LIMIT_ABUSE_COUNT = env_int("WS_RATE_LIMIT_ABUSE_COUNT", default=100, minimum=1)
WS_RATE_LIMIT_ABUSE_WINDOW_S = env_int("WS_RATE_LIMIT_ABUSE_WINDOW_S", default=10, minimum=1)
# Concurrent sockets per user and per client address (cluster-wide with Redis); 0 = unlimited.
WS_MAX_CONNECTIONS_PER_USER = env_int("WS_MAX_CONNECTIONS_PER_USER", default=20, minimum=0)
WS_MAX_CONNECTIONS_PER_IP = env_int("WS_MAX_CONNECTIONS_PER_IP", default=200, minimum=0)
# Admission control (sessions_app/realtime/admission.py): past this many handshakes under way a new
# one is refused at once with server_busy and a retry slot; 0 admits every handshake.
WS_MAX_HANDSHAKES_IN_FLIGHT = env_int("WS_MAX_HANDSHAKES_IN_FLIGHT", default=256, minimum=0)
# The rate retry hints assume before the process has measured a faster one (handshakes per second).
WS_ADMISSION_MIN_RATE_PER_S = env_int("WS_ADMISSION_MIN_RATE_PER_S", default=100, minimum=1)
# A ticket (POST /api/auth/ticket/) opens one socket within this many seconds, instead of the token in the URL.
WS_TICKET_TTL_S = env_int("WS_TICKET_TTL_S", default=30, minimum=1, maximum=600)
# None: an Origin whose host is in ALLOWED_HOSTS; "*": any origin.
WS_ALLOWED_ORIGINS = env_origins("WS_ALLOWED_ORIGINS", default=[])
AUTH_TOKEN_TTL_S = env_int("AUTH_TOKEN_TTL_S", default=24 * 3600, minimum=60)
SESSION_TTL_S = env_int("SESSION_TTL_S", default=8 * 3600, minimum=1)
PRESENCE_FLUSH_INTERVAL_S = env_int("PRESENCE_FLUSH_INTERVAL_S", default=10, minimum=1)
# Send a frame at once when the socket has nothing queued (sessions_app/realtime/internals.py).
FAST_SOCKET_WRITES = env_bool("FAST_SOCKET_WRITES", default=True)
LEAN_WEBSOCKET_PROTOCOLS = env_bool("LEAN_WEBSOCKET_PROTOCOLS", default=True)
LEAN_CONNECTION_INBOXES = env_bool("LEAN_CONNECTION_INBOXES", default=True)
# The session stream (README "Guarantees"): numbered pushes kept for replay on `reconnect`,
# in Redis when REDIS_URL is set (shared by every process), else in process memory.
SESSION_STREAM_MAX_MESSAGES = env_int("SESSION_STREAM_MAX_MESSAGES", default=256, minimum=1)
SESSION_STREAM_TTL_S = env_int("SESSION_STREAM_TTL_S", default=3600, minimum=10)
# How often each process compares its connections with their streams' heads (fills lost pushes).
SESSION_STREAM_CHECK_INTERVAL_S = env_int("SESSION_STREAM_CHECK_INTERVAL_S", default=5, minimum=1)
SHUTDOWN_GRACE_MS = env_int("SHUTDOWN_GRACE_MS", default=3_000, minimum=0)
SHUTDOWN_RETRY_AFTER_MIN_MS = env_int("SHUTDOWN_RETRY_AFTER_MIN_MS", default=1_000, minimum=0)
SHUTDOWN_RETRY_AFTER_MAX_MS = env_int("SHUTDOWN_RETRY_AFTER_MAX_MS", default=5_000, minimum=0)
# The hint is spread over (connections held / fastest admission rate seen), within this bound.
SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS = env_int("SHUTDOWN_RETRY_AFTER_SPREAD_CAP_MS", default=30_000, minimum=0)
if SHUTDOWN_RETRY_AFTER_MAX_MS < SHUTDOWN_RETRY_AFTER_MIN_MS:
    raise ImproperlyConfigured("SHUTDOWN_RETRY_AFTER_MAX_MS must not be below SHUTDOWN_RETRY_AFTER_MIN_MS.")

# --- CORS for the HTTP API (django-cors-headers; README "A frontend on its own origin") ---
# Unset: the origins the socket accepts (config/cors.py). Only /api/: the admin stays same-origin.
_cors_origins = env_origins("CORS_ALLOWED_ORIGINS", default=WS_ALLOWED_ORIGINS)
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
CORS_PREFLIGHT_MAX_AGE = env_int("CORS_PREFLIGHT_MAX_AGE", default=86_400, minimum=0)

# --- Simulators (README "Simulator workers") ---
# inprocess: each daphne process also runs simulators (the embedded default);
# worker: only `manage.py simulator_worker` processes do.
SIMULATOR_RUNNER = env_choice(
    "SIMULATOR_RUNNER", ["inprocess", "worker"], default="worker" if PRODUCTION else "inprocess"
)
SIMULATOR_TICK_MS = env_int("SIMULATOR_TICK_MS", default=1_000, minimum=10)
SIMULATOR_LEASE_TTL_MS = env_int("SIMULATOR_LEASE_TTL_MS", default=10_000, minimum=500)
SIMULATOR_LEASE_RENEW_MS = env_int("SIMULATOR_LEASE_RENEW_MS", default=2_000, minimum=100)
if SIMULATOR_LEASE_RENEW_MS * 2 > SIMULATOR_LEASE_TTL_MS:
    raise ImproperlyConfigured("SIMULATOR_LEASE_RENEW_MS must be at most half of SIMULATOR_LEASE_TTL_MS.")
# How long a simulator may stay without a worker (lease lapsed, or never picked up) before it shows `error`.
SIMULATOR_ORPHAN_GRACE_MS = env_int("SIMULATOR_ORPHAN_GRACE_MS", default=15_000, minimum=0)
# A running simulator whose user has had no connected client this long stops itself; 0 disables.
SIMULATOR_IDLE_TIMEOUT_S = env_int("SIMULATOR_IDLE_TIMEOUT_S", default=1_800, minimum=0)
SIMULATOR_WORKER_CAPACITY = env_int("SIMULATOR_WORKER_CAPACITY", default=500, minimum=1)

# --- Market (README "Market data and paper trading") ---
MARKET_TICK_MS = env_int("MARKET_TICK_MS", default=500, minimum=10)
MARKET_SOURCE = env_choice("MARKET_SOURCE", ["random", "replay"], default="random")
# Unset: a random seed chosen when the feed first starts and kept in the database.
MARKET_SEED = env_optional_int("MARKET_SEED")
MARKET_TIME_SCALE = env_int("MARKET_TIME_SCALE", default=60, minimum=1)
MARKET_REPLAY_FILE = env_str("MARKET_REPLAY_FILE", default=str(BASE_DIR / "market_app" / "data" / "example_bars.csv"))
if MARKET_SOURCE == "replay" and not Path(MARKET_REPLAY_FILE).is_file():
    raise ImproperlyConfigured(f"MARKET_REPLAY_FILE {MARKET_REPLAY_FILE!r} is not a file (MARKET_SOURCE=replay).")
MARKET_STARTING_CASH = env_int("MARKET_STARTING_CASH", default=100_000, minimum=0)
# The default commission schedule of an account (market_app.fees; each account may set its own in the admin),
# times the simulator profile's fee factor (ideal 0, realistic 1, harsh 2). By default a per-share schedule
# as many brokers charge for US shares: 0.005 a share, at least 1 an order.
MARKET_COMMISSION_PER_SHARE = env_decimal("MARKET_COMMISSION_PER_SHARE", default="0.005")
MARKET_COMMISSION_MINIMUM = env_decimal("MARKET_COMMISSION_MINIMUM", default="1")
MARKET_COMMISSION_BPS = env_decimal("MARKET_COMMISSION_BPS", default="0")
# A simulated trading day (when `day` orders expire) is this many feed ticks.
MARKET_DAY_TICKS = env_int("MARKET_DAY_TICKS", default=780, minimum=1)
# A connection whose socket has this much unsent data gets only the newest prices (conflation).
MARKET_CONFLATE_BACKLOG_BYTES = env_int("MARKET_CONFLATE_BACKLOG_BYTES", default=65_536, minimum=1024)
# The account's equity curve (README "The account's journal and figures"): how often the worker running a
# user's simulator records their equity, and how long the samples are kept.
EQUITY_SAMPLE_INTERVAL_S = env_int("EQUITY_SAMPLE_INTERVAL_S", default=10, minimum=1)
EQUITY_SAMPLE_RETENTION_DAYS = env_int("EQUITY_SAMPLE_RETENTION_DAYS", default=30, minimum=1)

# /metrics: with METRICS_TOKEN, only `Authorization: Bearer <token>`; without, only these client addresses.
METRICS_TOKEN = env_optional_str("METRICS_TOKEN")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

LOG_LEVEL = env_choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO")
LOG_FORMAT = env_choice("LOG_FORMAT", ["json", "plain"], default="json" if PRODUCTION else "plain")
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
