"""Settings for BMS.

The environment is read here and nowhere else. With no environment at all the platform runs
embedded on one machine: SQLite file, local-memory cache, in-memory channel layer, eager Celery
tasks and the offline chat agent. ``DATABASE_URL`` / ``REDIS_URL`` switch to the real services.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets the generic classes of django-stubs be subscripted at run time (``admin.ModelAdmin[Program]``).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

_DEFAULT_SECRET_KEY = "bms-insecure-default-key-for-local-use-only"  # noqa: S105 - refused in production


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_ranges(name: str, default: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """``name=lo:hi`` pairs, comma-separated (``audience=0:500000,rating=0:60``), over ``default``."""
    ranges = dict(default)
    for item in env_list(name):
        key, _, bounds = item.partition("=")
        lo, sep, hi = bounds.partition(":")
        if key.strip() not in default or not sep:
            raise ImproperlyConfigured(f"{name}: {item!r} is not <target>=<low>:<high> ({', '.join(default)}).")
        ranges[key.strip()] = (float(lo), float(hi))
    return ranges


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", _DEFAULT_SECRET_KEY)
# Production = a real database configured and DEBUG off. It must not run on the public default key.
EMBEDDED = not env_str("DATABASE_URL")
if not EMBEDDED and not DEBUG and SECRET_KEY == _DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production (DATABASE_URL set, DEBUG off).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
# Browsers may read these on cross-origin answers (export file names, request ids for support).
CORS_EXPOSE_HEADERS = ["Content-Disposition", "X-Request-ID", "Retry-After"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "bms.apps.BmsAdminConfig",  # django.contrib.admin with the audited site (bms/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from static files: /api/docs works offline
    "corsheaders",
    "django_filters",
    "django_celery_beat",
    "django_prometheus",
    "channels",
    "bms",
    "programs",
    "registry",
    "predictions",
    "scheduling",
    "chat",
    "web",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "bms.client_ip.ClientIpMiddleware",
    "bms.middleware.RequestIdMiddleware",
    "bms.access_log.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "bms.urls"
WSGI_APPLICATION = "bms.wsgi.application"
ASGI_APPLICATION = "bms.asgi.application"
# Threads of an ASGI process (uvicorn: WebSockets, and HTTP in `make run`) that run synchronous code such as
# the consumers' database calls; asgiref reads the same variable for its thread pool. HTTP in production is
# gunicorn's sync workers (bms/gunicorn_conf.py): one request thread per worker process.
ASGI_THREADS = env_int("ASGI_THREADS", 16)

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
VAR_DIR = Path(env_str("BMS_VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'bms.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 connection pool (Django >= 5.1); CONN_MAX_AGE must stay 0 with a pool.
    # Every thread of a web process that touches the database holds at most one connection: the
    # ASGI_THREADS threads of a uvicorn process (a gunicorn sync worker has one) and the prediction-log
    # flusher. The pool covers them all by construction; a smaller DATABASE_POOL_MAX is refused, as it
    # would turn a busy minute into PoolTimeout 500s.
    DATABASE_POOL_MIN_SIZE = ASGI_THREADS + 1
    DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", DATABASE_POOL_MIN_SIZE)
    if DATABASE_POOL_MAX < DATABASE_POOL_MIN_SIZE:
        raise ImproperlyConfigured(
            f"DATABASE_POOL_MAX={DATABASE_POOL_MAX} is below the threads that hold a connection "
            f"(ASGI_THREADS + 1 = {DATABASE_POOL_MIN_SIZE})."
        )
    if env_bool("DATABASE_POOL", True):
        DATABASES["default"]["OPTIONS"] = {
            "pool": {
                "min_size": 1,
                "max_size": DATABASE_POOL_MAX,
                # A request waiting longer than this for a connection gets a 503, not a hang.
                "timeout": env_float("DATABASE_POOL_TIMEOUT", 5.0),
            }
        }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("DATABASE_TEST_NAME", "test_bms")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Reuse a thread's SQLite connection: opening one (and its PRAGMAs) per request costs more than the query.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
    # WAL lets the pages read while a training run or an import writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        # Python's sqlite3 keeps up to 128 prepared statements per connection by default, and SQLite's
        # memory with them: batch upserts of varying length (bms.db.rows_accumulate) each cache their own
        # text, so an import's memory grew with its size. A few cover the statements that do repeat.
        "cached_statements": 16,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery, channel layer ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 1.0)
if REDIS_URL:
    # Redis down: the cache (throttles included) falls back to the process's memory for
    # CACHE_FALLBACK_RETRY_SECONDS at a time (bms.cache); short timeouts so no request hangs on it.
    CACHES = {
        "default": {
            "BACKEND": "bms.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "bms"),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "FALLBACK_RETRY_SECONDS": env_float("CACHE_FALLBACK_RETRY_SECONDS", 5.0),
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bms"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
# Embedded default: no broker, so tasks run in-process at once.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not (REDIS_URL or env_str("CELERY_BROKER_URL")))
# ...on background threads of the process (bms.jobs), so a request that starts a job returns at once.
JOBS_IN_BACKGROUND = env_bool("JOBS_IN_BACKGROUND", True)
JOB_THREADS = env_int("JOB_THREADS", 2)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged when it ends, and given back to the queue if its worker process dies; tasks
# are idempotent and resume (registry.tasks, scheduling.tasks). Visibility timeout: see below.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker that loses the broker stops its running tasks: they cannot be acknowledged, so they will
# be redelivered (and resume) rather than run twice side by side.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing with the broker down: fail fast (the caller answers 503), no long retry loop.
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT_SECONDS
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1800)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 2100)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = True
# Worker /metrics (bms.celery_metrics): port 0 disables it. Processes that share one /metrics need
# PROMETHEUS_MULTIPROC_DIR: Celery's prefork children and gunicorn's web workers (bms/gunicorn_conf.py).
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104 - scraped from other containers  # nosec B104
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
CELERY_MONITORED_QUEUES = env_list("CELERY_MONITORED_QUEUES", "celery")
CELERY_TASK_SEND_SENT_EVENT = True

# --- Auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# django-axes watches every authenticate() (pages, admin, the token endpoint): after LOGIN_FAILURE_LIMIT
# failures from one client IP, or for one username, logins there are refused for LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "bms.client_ip.request_client_ip"
AXES_LOCKOUT_CALLABLE = "bms.lockout.lockout_response"
AXES_VERBOSE = False
# Proxies whose X-Forwarded-For is believed (CIDRs; bms.client_ip). Empty: the TCP peer is the client.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bms.tokens.JWTAuthentication",
        "bms.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["bms.permissions.IsViewer"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["bms.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "bms.schema.AutoSchema",
    "EXCEPTION_HANDLER": "bms.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "bms.throttling.AnonRateThrottle",
        "bms.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "60/minute"),
        "user": env_str("THROTTLE_USER", "6000/minute"),
        "chat": env_str("THROTTLE_CHAT", "30/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "bms.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles key anonymous callers on REMOTE_ADDR, which bms.client_ip resolved; never on a raw header.
    "NUM_PROXIES": 0,
}
# How long a process trusts an API key lookup (key, user, role) before asking the database again.
API_KEY_CACHE_SECONDS = env_float("API_KEY_CACHE_SECONDS", 5.0)
# Safety-net TTL of the cached list responses (bms.response_cache; versions invalidate them). 0: off.
RESPONSE_CACHE_SECONDS = env_int("RESPONSE_CACHE_SECONDS", 30)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": SECRET_KEY,
    # Tokens carry a digest of the password hash: a password change ends every earlier token.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "bms.tokens.TokenRefreshSerializer",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BMS API",
    "DESCRIPTION": "Broadcast analytics: programs, models, predictions, schedules, chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Request bodies: anything larger than this is refused with 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
# ...and a JSON body nested deeper than this (lists/objects) is refused with 400 (bms.parsers).
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 32)

# --- I18N / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# Broadcast schedules are local: dayparts and holidays are computed in this zone.
TIME_ZONE = env_str("TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Images collect static files at build time outside the /app/var volume (docker/Dockerfile sets it).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS: list[Path | tuple[str, Path]] = [BASE_DIR / "static"]
# Chart.js is installed from npm at setup into node_modules (never committed).
NODE_MODULES_DIR = BASE_DIR / "node_modules"
if (NODE_MODULES_DIR / "chart.js" / "dist").is_dir():
    STATICFILES_DIRS.append(("vendor/chartjs", NODE_MODULES_DIR / "chart.js" / "dist"))

# --- Domain settings --------------------------------------------------------------------------
ARTIFACT_ROOT = Path(env_str("ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))
EXPORT_ROOT = Path(env_str("EXPORT_ROOT", str(VAR_DIR / "exports")))
# The serving history states (predictions.history_store), one directory per broadcast data version: the
# first process to need a version builds and writes them, every other one maps them in. "" = keep them
# in memory only (every process builds its own).
HISTORY_STATE_ROOT = env_str("HISTORY_STATE_ROOT", str(VAR_DIR / "history-states"))
# Build a data version's history states in a job right after an import or a generation commits (a Celery
# worker, or a background thread in the embedded mode), so the first prediction after it does not.
HISTORY_PREBUILD = env_bool("HISTORY_PREBUILD", True)
EXPORT_LINK_TTL_SECONDS = env_int("EXPORT_LINK_TTL_SECONDS", 3600)
# CSV imports larger than this are refused before reading (programs.importer reads them in chunks).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 512 * 1024 * 1024)
PROMOTION_MIN_R2 = env_float("PROMOTION_MIN_R2", 0.7)
# The values a target column may hold, per target (in its unit: household points, USD per airing,
# thousands of viewers, 0-100 score). The importer refuses a row outside them and names this setting.
TARGET_RANGES = env_ranges(
    "TARGET_RANGES",
    {"rating": (0.0, 100.0), "revenue": (0.0, 1e9), "audience": (0.0, 200_000.0), "engagement": (0.0, 100.0)},
)
TRAINING_SEED = env_int("TRAINING_SEED", 42)
# One thread per model: runs fan out one task per model, so workers (not threads) use the cores.
TRAINING_N_JOBS = env_int("TRAINING_N_JOBS", 1)
# Train on the latest this many days of airings when there are more (0 = all): training time grows with
# rows, and a broadcaster's older seasons say little about next week (bench/scale.py reports the R² cost).
TRAINING_WINDOW_DAYS = env_int("TRAINING_WINDOW_DAYS", 1095)
# ... and on at most this many of the latest airings (0 = no cap): days do not bound the rows when channels
# grow (three years of 50 channels are a million airings); bench/train_window.py reports the R² cost.
TRAINING_MAX_AIRINGS = env_int("TRAINING_MAX_AIRINGS", 300_000)
NIGHTLY_TRAINING_ENABLED = env_bool("NIGHTLY_TRAINING_ENABLED", True)
NIGHTLY_TRAINING_CRON = env_str("NIGHTLY_TRAINING_CRON", "0 3 * * *")
# registry.training_runs_sweep: a run left RUNNING (lost chord callback, dead worker) or QUEUED is moved on.
TRAINING_SWEEP_CRON = env_str("TRAINING_SWEEP_CRON", "*/10 * * * *")
TRAINING_SWEEP_GRACE_MINUTES = env_int("TRAINING_SWEEP_GRACE_MINUTES", 10)
TRAINING_RUN_STALE_MINUTES = env_int("TRAINING_RUN_STALE_MINUTES", 120)
DRIFT_PSI_THRESHOLD = env_float("DRIFT_PSI_THRESHOLD", 0.2)
DRIFT_RETRAIN_ENABLED = env_bool("DRIFT_RETRAIN_ENABLED", False)
PREDICT_BATCH_MAX_ITEMS = env_int("PREDICT_BATCH_MAX_ITEMS", 1000)
# Predictions app: KS threshold for numeric drift, tolerated error growth, windows, cron of the check.
DRIFT_KS_THRESHOLD = env_float("DRIFT_KS_THRESHOLD", 0.1)
DRIFT_ACCURACY_THRESHOLD = env_float("DRIFT_ACCURACY_THRESHOLD", 0.25)
# The accuracy threshold per model: this quantile of what its own holdout windows show by chance (at least
# DRIFT_ACCURACY_THRESHOLD); predictions.drift.accuracy_threshold, docs/predictions.md.
DRIFT_ACCURACY_QUANTILE = env_float("DRIFT_ACCURACY_QUANTILE", 0.99)
DRIFT_WINDOW_DAYS = env_int("DRIFT_WINDOW_DAYS", 7)
DRIFT_REFERENCE_DAYS = env_int("DRIFT_REFERENCE_DAYS", 90)
DRIFT_CHECK_CRON = env_str("DRIFT_CHECK_CRON", "30 4 * * *")
# A/B tests end by themselves at ends_at: the expiry task runs on this cron (and before every new test).
AB_TEST_EXPIRE_CRON = env_str("AB_TEST_EXPIRE_CRON", "*/5 * * * *")
# How often (ms) a serving process asks the registry whether a promotion/rollback happened.
PREDICTOR_GENERATION_CHECK_MS = env_int("PREDICTOR_GENERATION_CHECK_MS", 1000)
# A web process imports its views and loads the production models before its first request (bms.startup).
SERVER_WARM_UP = env_bool("SERVER_WARM_UP", True)
PREDICT_INTERVAL_LEVEL = env_float("PREDICT_INTERVAL_LEVEL", 0.9)
# Serve through predictions.fastpath (compiled from the fitted pipeline, checked equal at load time).
PREDICT_FAST_PATH = env_bool("PREDICT_FAST_PATH", True)
# Prediction logs are buffered and written in bulk by a background thread (synchronously in tests).
PREDICTION_LOG_FLUSH_SIZE = env_int("PREDICTION_LOG_FLUSH_SIZE", 200)
PREDICTION_LOG_FLUSH_SECONDS = env_float("PREDICTION_LOG_FLUSH_SECONDS", 2.0)
PREDICTION_LOG_BACKGROUND = env_bool("PREDICTION_LOG_BACKGROUND", True)
# A failed flush keeps its rows for the next one, this many attempts at most; the buffer's cap.
PREDICTION_LOG_FLUSH_ATTEMPTS = env_int("PREDICTION_LOG_FLUSH_ATTEMPTS", 5)
PREDICTION_LOG_MAX_PENDING = env_int("PREDICTION_LOG_MAX_PENDING", 100_000)
# Exposes /api/v1/bench/echo (validates a predict body, nothing else) for bench/predict.py only.
BENCH_ENDPOINTS = env_bool("BMS_BENCH_ENDPOINTS", False)
SCHEDULE_TIME_BUDGET_SECONDS = env_float("SCHEDULE_TIME_BUDGET_SECONDS", 30.0)
# The GA stops after this many generations without improvement (before its generation limit or budget):
# higher searches longer for a small gain.
SCHEDULE_GA_PLATEAU = env_int("SCHEDULE_GA_PLATEAU", 15)
# An optimisation task's limits (the GA stops at its budget; the rest is building and scoring).
SCHEDULE_TASK_SOFT_TIME_LIMIT = env_int("SCHEDULE_TASK_SOFT_TIME_LIMIT", int(SCHEDULE_TIME_BUDGET_SECONDS * 4 + 60))
SCHEDULE_TASK_TIME_LIMIT = env_int("SCHEDULE_TASK_TIME_LIMIT", int(SCHEDULE_TIME_BUDGET_SECONDS * 4 + 120))
# scheduling.optimization_jobs_sweep: a job with no progress for this long lost its worker for good.
OPTIMIZATION_SWEEP_CRON = env_str("OPTIMIZATION_SWEEP_CRON", "*/5 * * * *")

# Celery broker (Redis): an unacknowledged message (acks_late) returns to the queue once it has been out
# this long, so a task whose worker was killed is redelivered. It must outlast the longest task, or a
# task still running is delivered twice: sized from the time limits by construction.
CELERY_TASK_LONGEST_SECONDS = max(CELERY_TASK_TIME_LIMIT, SCHEDULE_TASK_TIME_LIMIT)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_LONGEST_SECONDS + env_int("CELERY_VISIBILITY_MARGIN_SECONDS", 300),
    # How often a worker looks for messages to redeliver (kombu's default scans every ~100 s).
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_SECONDS", 10),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
}

# --- Chat / LLM -------------------------------------------------------------------------------
GROQ_API_KEY = env_str("GROQ_API_KEY")
GROQ_MODEL = env_str("GROQ_MODEL", "llama-3.3-70b-versatile")
GROQ_BASE_URL = env_str("GROQ_BASE_URL", "https://api.groq.com/openai/v1")
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-2.0-flash")
# Gemini through its OpenAI-compatible endpoint, so all three providers share one client seam.
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/v1beta/openai/")
OPENROUTER_API_KEY = env_str("OPENROUTER_API_KEY")
OPENROUTER_MODEL = env_str("OPENROUTER_MODEL", "meta-llama/llama-3.3-70b-instruct")
OPENROUTER_BASE_URL = env_str("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 20.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1)
CHAT_MAX_TOOL_CALLS = env_int("CHAT_MAX_TOOL_CALLS", 6)
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 2000)
CHAT_CACHE_TTL_SECONDS = env_int("CHAT_CACHE_TTL_SECONDS", 3600)
# One time budget per question across every provider and retry; then the offline agent answers.
CHAT_TIME_BUDGET_SECONDS = env_float("CHAT_TIME_BUDGET_SECONDS", 10.0)
# An offline answer given because every provider failed is cached this long (the outage may end).
CHAT_FALLBACK_CACHE_TTL_SECONDS = env_int("CHAT_FALLBACK_CACHE_TTL_SECONDS", 300)
# Circuit breaker per provider: after this many failures in a row it is skipped for the cooldown.
LLM_BREAKER_FAILURES = env_int("LLM_BREAKER_FAILURES", 3)
LLM_BREAKER_COOLDOWN_SECONDS = env_float("LLM_BREAKER_COOLDOWN_SECONDS", 60.0)
# USD per 1M tokens (input, output), used for estimated cost and cache savings.
LLM_PRICES_PER_MTOK = {
    "groq": (0.59, 0.79),
    "gemini": (0.10, 0.40),
    "openrouter": (0.60, 0.80),
    "offline": (0.0, 0.0),
}
MONGO_URL = env_str("MONGO_URL")
MONGO_DB = env_str("MONGO_DB", "bms")

# --- Monitoring -------------------------------------------------------------------------------
GRAFANA_URL = env_str("GRAFANA_URL", "http://127.0.0.1:3000")
PROMETHEUS_EXPORT_MIGRATIONS = False
HEALTH_DISK_MIN_FREE_RATIO = env_float("HEALTH_DISK_MIN_FREE_RATIO", 0.10)
HEALTH_MEMORY_MAX_USED_RATIO = env_float("HEALTH_MEMORY_MAX_USED_RATIO", 0.90)
# Networks allowed to read /health/deep without being staff (e.g. the cluster's probes).
HEALTH_INTERNAL_NETWORKS = env_list("HEALTH_INTERNAL_NETWORKS", "127.0.0.0/8,::1/128")
DEMO_USERS = env_bool("BMS_DEMO_USERS", EMBEDDED)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_JSON = env_bool("LOG_JSON", not EMBEDDED)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "bms.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "bms.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Security (HTTPS) --------------------------------------------------------------------------
# Production (a real database, DEBUG off) is served over HTTPS behind a TLS-terminating proxy that sets
# X-Forwarded-Proto; `manage.py check --deploy --fail-level WARNING` passes with these defaults
# (docs/operations.md, "HTTPS"). A plain-HTTP stack (docker compose on a laptop) turns them off by env.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
PRODUCTION = not EMBEDDED and not DEBUG
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes and Prometheus talk plain HTTP to the pod itself.
SECURE_REDIRECT_EXEMPT = [r"^health(/deep)?$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# The proxy's scheme header; an empty SECURE_PROXY_SSL_HEADER (no proxy in front) disables it.
_PROXY_SSL_HEADER = env_str("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO")
SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https") if _PROXY_SSL_HEADER else None
