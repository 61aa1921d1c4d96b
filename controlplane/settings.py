"""Settings, read from the environment only (every variable is in docs/configuration.md).

No environment at all gives the embedded default: SQLite under var/, Celery on kombu's filesystem
transport under var/, a local-memory cache and debug pages. DATABASE_URL and REDIS_URL switch to
Postgres and Redis; CONTROLPLANE_ENV=production insists on the settings a deployment must make.
"""

from __future__ import annotations

import json
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from controlplane.env import (
    env_bool,
    env_float,
    env_float_map,
    env_int,
    env_list,
    env_str,
    secret_from_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONTROLPLANE_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env_str("CONTROLPLANE_ENV", "development") == "production"
if env_str("CONTROLPLANE_ENV", "development") not in {"development", "production"}:
    raise ImproperlyConfigured("CONTROLPLANE_ENV must be 'development' or 'production'")

if PRODUCTION:
    _required = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CONTROLPLANE_SNAPSHOT_KEYS")
    _missing = [n for n in _required if not env_str(n)]
    if _missing:
        raise ImproperlyConfigured(
            "Production mode (CONTROLPLANE_ENV=production) needs " + ", ".join(_missing)
        )

SECRET_KEY = env_str("SECRET_KEY") or secret_from_file(VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "controlplane",
    "replay",
    "budgets",
    "breakers",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "controlplane.middleware.RequestIdMiddleware",
    "controlplane.middleware.ApiErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Every view needs a login unless marked login_not_required (login page, health,
    # metrics, the demo downstream); DRF views mark themselves and answer 401 JSON.
    # (controlplane's subclass: an htmx request with an ended session gets HX-Redirect.)
    "controlplane.middleware.HtmxLoginRequiredMiddleware",
    "controlplane.middleware.TimezoneMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlplane.context_processors.roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")


def _sqlite(name: str | Path) -> dict:
    return {
        "ENGINE": "django_prometheus.db.backends.sqlite3",
        "NAME": name,
        # Web, worker and beat share the file: WAL lets readers run beside the writer, and
        # IMMEDIATE transactions take the write lock up front instead of failing to upgrade.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
    }


if DATABASE_URL.startswith("sqlite:"):
    DATABASES = {"default": _sqlite(dj_database_url.parse(DATABASE_URL)["NAME"])}
elif DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or sqlite:// URL")
    _db["ENGINE"] = "django_prometheus.db.backends.postgresql"
    _db["CONN_HEALTH_CHECKS"] = True
    DATABASES = {"default": _db}
else:
    DATABASES = {"default": _sqlite(VAR_DIR / "controlplane.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "controlplane.cache.InstrumentedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cp",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task whose worker dies unacknowledged is redelivered after this many seconds. It must
        # exceed the longest countdown we schedule (retry backoff caps at 60 s) and the hard task
        # time limit, or Redis would hand a still-running task to a second worker.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60),
    }
else:
    CACHES = {"default": {"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache"}}
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with its write/read race fixed (see controlplane/broker.py).
    CELERY_BROKER_TRANSPORT = "controlplane.broker:FilesystemTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu's virtual transports sleep `polling_interval` (default 1 s) whenever a poll finds
        # nothing it may take, and with acks_late + prefetch 1 that is after every task: the
        # worker took about one task a second. A short interval costs a few directory listings
        # per tick when idle (see docs/pipeline.md, "The embedded broker").
        "polling_interval": env_float("CONTROLPLANE_BROKER_POLL_SECONDS", 0.05, minimum=0.001),
    }
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT - 30, 5)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
API_TOKEN_TOUCH_INTERVAL = env_int("CONTROLPLANE_TOKEN_TOUCH_SECONDS", 60, minimum=0)

# --- API ------------------------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("CONTROLPLANE_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.permissions.RolePermission"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["controlplane.renderers.SafeJSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "controlplane.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "controlplane API",
    "DESCRIPTION": "Events in, breakers, error budgets and change gates. Bearer-token auth.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The Error component and every operation's error statuses (controlplane/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.schema.document_errors",
    ],
}

# --- Static, i18n -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve straight from static/ without collectstatic in development
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Observability ----------------------------------------------------------------------------
PROMETHEUS_EXPORT_MIGRATIONS = False
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "controlplane.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django attaches its own console handler; route its records through ours only, once.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "INFO"},
    },
}
HEALTH_CHECK_TIMEOUT = env_float("CONTROLPLANE_HEALTH_TIMEOUT", 2.0, minimum=0.1)

# --- Event pipeline ---------------------------------------------------------------------------
INGEST_BATCH_LIMIT = env_int("CONTROLPLANE_INGEST_BATCH_LIMIT", 1000, minimum=1)
MAX_EVENT_BYTES = env_int("CONTROLPLANE_MAX_EVENT_BYTES", 256 * 1024, minimum=256)
# host = default port only, host:port = that port, host:* = any port (controlplane/egress.py).
# The default lets the demo call this web server back, and nothing else on this machine.
WEBHOOK_ALLOWED_HOSTS = env_list(
    "CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS",
    [f"127.0.0.1:{env_str('PORT', '8000')}", f"localhost:{env_str('PORT', '8000')}"],
)
from controlplane.egress import parse_allow_list  # noqa: E402 - kept with its setting

try:
    parse_allow_list(tuple(WEBHOOK_ALLOWED_HOSTS))  # a bad entry stops the start, naming it
except ValueError as _exc:
    raise ImproperlyConfigured(f"CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS: {_exc}") from None
PYTHON_HANDLERS = env_list(
    "CONTROLPLANE_PYTHON_HANDLERS",
    ["breakers.builtin_handlers.noop", "breakers.builtin_handlers.log_event"],
)
DISPATCH_BATCH_SIZE = env_int("CONTROLPLANE_DISPATCH_BATCH", 100, minimum=1)
CLAIM_SECONDS = env_int("CONTROLPLANE_CLAIM_SECONDS", 600, minimum=5)
MAX_CLAIMS = env_int("CONTROLPLANE_MAX_CLAIMS", 10, minimum=1)
# A dead node is declared after 3 missed heartbeats (15 s) and its events are enqueued again by
# the next sweep (<= 5 s later): recovery within ~20 s, under the 30 s promised in pipeline.md.
HEARTBEAT_SECONDS = env_float("CONTROLPLANE_HEARTBEAT_SECONDS", 5.0, minimum=0.2)
RELAY_GRACE_SECONDS = env_float("CONTROLPLANE_RELAY_GRACE_SECONDS", 30.0, minimum=0.5)
SWEEP_SECONDS = env_float("CONTROLPLANE_SWEEP_SECONDS", 5.0, minimum=0.5)
ROUTE_REFRESH_SECONDS = env_float("CONTROLPLANE_ROUTE_REFRESH_SECONDS", 2.0, minimum=0.1)
ATTEMPT_RETENTION_DAYS = env_int("CONTROLPLANE_ATTEMPT_RETENTION_DAYS", 14, minimum=1)
IDEMPOTENCY_TTL_SECONDS = env_int("CONTROLPLANE_IDEMPOTENCY_TTL", 86400, minimum=60)
RETRY_BASE_SECONDS = env_float("CONTROLPLANE_RETRY_BASE_SECONDS", 0.1, minimum=0.001)
RETRY_CAP_SECONDS = env_float("CONTROLPLANE_RETRY_CAP_SECONDS", 60.0, minimum=0.01)
# Concurrent delivery (breakers/pool.py): calls in flight per worker process, how often finished
# outcomes are written (one batch per flush), and how many abandoned handler threads (calls that
# ignored their deadline) a process tolerates before it stops replacing them.
DELIVERY_CONCURRENCY = env_int("CONTROLPLANE_DELIVERY_CONCURRENCY", 64, minimum=1)
DELIVERY_FLUSH_MS = env_float("CONTROLPLANE_DELIVERY_FLUSH_MS", 10.0, minimum=0.5)
DELIVERY_MAX_STRAGGLERS = env_int("CONTROLPLANE_DELIVERY_MAX_STRAGGLERS", 16, minimum=0)
DELIVERY_RESERVED_URGENT = env_int("CONTROLPLANE_DELIVERY_RESERVED_URGENT", 8, minimum=0)
BULKHEAD_DEFER_SECONDS = env_float("CONTROLPLANE_BULKHEAD_DEFER_SECONDS", 0.5, minimum=0.01)
# Admission at ingest (breakers/admission.py, docs/configuration.md "Admission"): the share of
# a service's burst that only CRITICAL and HIGH may take, and shedding by delivery lag.
ADMISSION_URGENT_RESERVE = env_float("CONTROLPLANE_ADMISSION_URGENT_RESERVE", 0.2, minimum=0.0)
if ADMISSION_URGENT_RESERVE >= 1.0:
    raise ImproperlyConfigured(
        "CONTROLPLANE_ADMISSION_URGENT_RESERVE must be below 1 (a fraction of the burst), "
        f"got {ADMISSION_URGENT_RESERVE}"
    )
SHED_CHECK_SECONDS = env_float("CONTROLPLANE_SHED_CHECK_SECONDS", 1.0, minimum=0.0)
SHED_LAG_SECONDS = env_float_map(
    "CONTROLPLANE_SHED_LAG_SECONDS",
    {"LOW": 60.0, "MEDIUM": 300.0, "HIGH": 900.0},
    keys=["HIGH", "MEDIUM", "LOW"],  # CRITICAL is never shed for load
)
SHED_TALLY_RETENTION_DAYS = env_int("CONTROLPLANE_SHED_TALLY_RETENTION_DAYS", 7, minimum=1)
DEMO_DOWNSTREAM_URL = env_str(
    "CONTROLPLANE_DEMO_URL", f"http://127.0.0.1:{env_str('PORT', '8000')}"
)

# At-least-once: a task is acknowledged after it ran, and given back if its worker dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"

# --- Budgets ----------------------------------------------------------------------------------
# Error budgets, gates and canaries (documented in docs/budgets.md, "Configuration").
BUDGETS_FREEZE_THRESHOLD = env_float("BUDGETS_FREEZE_THRESHOLD", 0.8, minimum=0.01)
BUDGETS_REQUEST_TTL_MINUTES = env_int("BUDGETS_REQUEST_TTL_MINUTES", 24 * 60, minimum=1)
BUDGETS_APPROVAL_TTL_MINUTES = env_int("BUDGETS_APPROVAL_TTL_MINUTES", 4 * 60, minimum=1)
BUDGETS_CANARY_TOLERANCE = env_float("BUDGETS_CANARY_TOLERANCE", 0.001, minimum=0.0)
BUDGETS_CANARY_CONFIDENCE = env_float("BUDGETS_CANARY_CONFIDENCE", 0.95, minimum=0.5)
BUDGETS_CANARY_MIN_EVENTS = env_int("BUDGETS_CANARY_MIN_EVENTS", 1000, minimum=1)
BUDGETS_CURRENT_BURN_MINUTES = env_int("BUDGETS_CURRENT_BURN_MINUTES", 60, minimum=5)
BUDGETS_LEDGER_RETENTION_DAYS = env_int("BUDGETS_LEDGER_RETENTION_DAYS", 100, minimum=94)
BUDGETS_DAY_RETENTION_DAYS = env_int("BUDGETS_DAY_RETENTION_DAYS", 400, minimum=94)
BUDGETS_WEBHOOK_TIMEOUT_SECONDS = env_float("BUDGETS_WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Reports: work-item tracker keys must match this (Jira style by default); the report
# webhook posts to this URL, whose host must be in CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS.
BUDGETS_WORK_ITEM_KEY_PATTERN = env_str(
    "BUDGETS_WORK_ITEM_KEY_PATTERN", r"[A-Z][A-Z0-9]{1,9}-[0-9]{1,9}"
)
BUDGETS_REPORT_WEBHOOK_URL = env_str("BUDGETS_REPORT_WEBHOOK_URL", "")
# The demo downstream (/demo/) and demo traffic: on for development, off in production.
DEMO_ENABLED = env_bool("CONTROLPLANE_DEMO", not PRODUCTION)

# --- Breakers ---------------------------------------------------------------------------------
PROMETHEUS_URL = env_str("PROMETHEUS_URL").rstrip("/")
DYNAMIC_RECOMPUTE_SECONDS = env_float("CONTROLPLANE_DYNAMIC_RECOMPUTE_SECONDS", 30.0, minimum=1)


# --- Snapshots (replay/snapshots.py) -----------------------------------------------------------
# "k2:secret2,k1:secret1": the first key signs, every key verifies (rotation). Unset (embedded
# default): one key, id "local", derived from SECRET_KEY, so changing SECRET_KEY invalidates them.
def _snapshot_keys(raw: str) -> list[tuple[str, str]]:
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id.strip() or not secret.strip():
            raise ImproperlyConfigured(
                "CONTROLPLANE_SNAPSHOT_KEYS must be comma-separated key_id:secret pairs"
            )
        keys.append((key_id.strip(), secret.strip()))
    if len({k for k, _ in keys}) != len(keys):
        raise ImproperlyConfigured("CONTROLPLANE_SNAPSHOT_KEYS names a key id twice")
    return keys


SNAPSHOT_KEYS = _snapshot_keys(env_str("CONTROLPLANE_SNAPSHOT_KEYS"))
if not SNAPSHOT_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured("CONTROLPLANE_SNAPSHOT_KEYS is required in production")
    import hashlib as _hashlib
    import hmac as _hmac

    SNAPSHOT_KEYS = [
        (
            "local",
            _hmac.new(SECRET_KEY.encode(), b"controlplane.snapshots", _hashlib.sha256).hexdigest(),
        )
    ]
SNAPSHOT_RETENTION_DAYS = env_int("CONTROLPLANE_SNAPSHOT_RETENTION_DAYS", 30, minimum=1)
# Daily export of the previous 24 h of all events, at HH:MM UTC.
SNAPSHOT_DAILY_AT = env_str("CONTROLPLANE_SNAPSHOT_DAILY_AT", "02:00")
try:
    _h, _m = (int(x) for x in SNAPSHOT_DAILY_AT.split(":"))
    if not (0 <= _h < 24 and 0 <= _m < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(
        f"CONTROLPLANE_SNAPSHOT_DAILY_AT must be HH:MM (UTC), got {SNAPSHOT_DAILY_AT!r}"
    ) from None
SNAPSHOT_DAILY_CRONTAB = {"hour": _h, "minute": _m}
SNAPSHOT_CHUNK_ROWS = env_int("CONTROLPLANE_SNAPSHOT_CHUNK_ROWS", 2000, minimum=10)
_SNAPSHOT_BACKEND = env_str(
    "CONTROLPLANE_SNAPSHOT_STORAGE", "django.core.files.storage.FileSystemStorage"
)
try:
    # Options of another backend (e.g. django-storages' S3: {"bucket_name": "..."}), as JSON.
    _SNAPSHOT_OPTIONS = json.loads(env_str("CONTROLPLANE_SNAPSHOT_STORAGE_OPTIONS") or "{}")
except ValueError:
    raise ImproperlyConfigured(
        "CONTROLPLANE_SNAPSHOT_STORAGE_OPTIONS must be a JSON object"
    ) from None
if not isinstance(_SNAPSHOT_OPTIONS, dict):
    raise ImproperlyConfigured("CONTROLPLANE_SNAPSHOT_STORAGE_OPTIONS must be a JSON object")
if _SNAPSHOT_BACKEND == "django.core.files.storage.FileSystemStorage":
    _SNAPSHOT_OPTIONS.setdefault(
        "location", env_str("CONTROLPLANE_SNAPSHOT_DIR") or str(VAR_DIR / "snapshots")
    )
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "snapshots": {"BACKEND": _SNAPSHOT_BACKEND, "OPTIONS": _SNAPSHOT_OPTIONS},
}
