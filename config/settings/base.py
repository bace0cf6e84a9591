"""Settings shared by every environment, read from environment variables.

Every variable is listed in docs/settings.md (tests/test_settings_doc.py checks it). With no
``DATABASE_URL`` the service uses a SQLite file under ``var/``; with no ``REDIS_URL`` Celery
runs tasks in-process and the cache is local memory (the embedded default).
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_or(name: str, default: str) -> str:
    """The variable's value, or ``default`` when it is unset or empty."""
    return env.str(name, default="") or default


def env_int(name: str, default: int) -> int:
    """A whole number from the environment; ``default`` when unset or empty."""
    value = env_or(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_flag(name: str, default: bool) -> bool:
    """A yes/no setting (true/false, 1/0, yes/no, on/off); ``default`` when unset or empty."""
    value = env_or(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


DEBUG: bool = env_flag("DEBUG", False)

SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(DEBUG is off, so no development key is used)."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS: list[str] = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "surveys",
    "feedback",
    "scoring",
    "results",
    "plans",
    "auditlog",
    "audit",
    "webhooks",
    "demo",  # development and benchmarks: reads the apps above, read by none
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session is read: a cookie the database cannot look up is dropped.
    "config.middleware.UnstorableInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request's user is the actor of the audit entries it causes (audit.context).
    "audit.context.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy of every response: everything from this server only, and no inline
# script or style but the ones a page marks with the request's nonce (``{{ csp_nonce }}``).
# The admin, the web forms, the dashboard and the API docs (Swagger UI, Redoc from
# drf-spectacular-sidecar) all run under it; see docs/security.md.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL (postgres://user:pass@host:port/name), else a SQLite file in var/.
DATABASE_URL: str = env_or("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("CONN_MAX_AGE", 0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a task writes; a short busy timeout avoids
    # "database is locked" under the light concurrency of the embedded default.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Read replica: DATABASE_REPLICA_URL (a hot standby of DATABASE_URL), read by the results
# pages, the read API and the exports, never for writes (config.db_router, docs/capacity.md).
DATABASE_REPLICA_URL: str = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].setdefault("CONN_MAX_AGE", DATABASES["default"]["CONN_MAX_AGE"])
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
    # After authentication (whose reads stay on the primary), around the results views.
    MIDDLEWARE.append("config.db_router.ReplicaReadsMiddleware")

# Redis: broker, result backend and cache when REDIS_URL is set.
REDIS_URL: str = env.str("REDIS_URL", default="")

# Seconds a Redis call may wait to connect or for an answer: a hung Redis must not hold a
# request for long. While Redis is unreachable the cache degrades to none and rate limits to
# per-process counters (config.cache, config.abuse); citizens are still served.
REDIS_TIMEOUT_SECONDS: float = float(env_or("REDIS_TIMEOUT_SECONDS", "0.5"))

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sipas"),
            "OPTIONS": {
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: with no REDIS_URL tasks run in-process (eager); with it, Redis is broker and backend.
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND: str | None = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "")
CELERY_RESULT_BACKEND = CELERY_RESULT_BACKEND or None
CELERY_TASK_ALWAYS_EAGER: bool = env_flag("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues work (a recompute, a paper import) learns within about a second that
# the broker is down and answers 503 (config/queueing.py), instead of retrying for long.
CELERY_BROKER_CONNECTION_TIMEOUT: float = float(env_or("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
CELERY_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# A task taken by a worker that died unacknowledged (acks late) is delivered again after this
# many seconds (Redis transport; its default is an hour). Tasks that may run longer are
# guarded against a second copy running at once (scoring.services.claim_run,
# feedback.paper.services.claim_import).
CELERY_VISIBILITY_TIMEOUT: int = env_int("CELERY_VISIBILITY_TIMEOUT", 600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BEAT_SCHEDULE: dict = {
    "purge-expired-drafts": {"task": "feedback.purge_expired_drafts", "schedule": 3600.0},
}

# Form fields accepted in one request. The questionnaire editor posts one section at a time
# (at most a few hundred fields at SIPAS size), so Django's default of 1,000 is kept.
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1_000)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: Vietnamese by default, English available.
LANGUAGE_CODE: str = env_or("LANGUAGE_CODE", "vi")
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(
        f"LANGUAGE_CODE={LANGUAGE_CODE!r} is not supported; use one of: "
        + ", ".join(dict(LANGUAGES))
    )
LOCALE_PATHS = [BASE_DIR / "locale"]
# DATE_FORMAT and DATETIME_FORMAT of vi and en as written in a sentence (config/formats).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE: str = env_or("TIME_ZONE", "Asia/Ho_Chi_Minh")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_or("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_or("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, refusing text the database cannot store (config.input_guard).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "120/minute", "user": "1200/minute"},
    # Proxies of ours in front of the service: the client address is the one this many hops
    # from the right in X-Forwarded-For. Unset or 0: the connection's address only (a client
    # can write any X-Forwarded-For). Every rate limit reads it through config.abuse.
    "NUM_PROXIES": int(env_or("NUM_PROXIES", "0")) if env_or("NUM_PROXIES", "") else None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

# Citizens' responses (feedback app).
# Public address links to the service start with (resume, invitation, petition tracking
# links, e-mails). Empty: built from the request being answered (config.links).
PUBLIC_BASE_URL: str = env_or("PUBLIC_BASE_URL", "")
# A web draft that is not submitted is deleted this many hours after its last save.
FEEDBACK_DRAFT_TTL_HOURS: int = env_int("FEEDBACK_DRAFT_TTL_HOURS", 72)
# Anonymous submissions per client (hashed IP) and period, e.g. "20/hour".
RESPONSE_SUBMIT_RATE: str = env_or("RESPONSE_SUBMIT_RATE", "30/hour")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["response-submit"] = RESPONSE_SUBMIT_RATE
# Largest request body accepted by the response API, in bytes.
FEEDBACK_MAX_BODY_BYTES: int = env_int("FEEDBACK_MAX_BODY_BYTES", 256 * 1024)
# Salt of the IP hash used for rate limiting; defaults to one derived from SECRET_KEY.
IP_HASH_SALT: str = env_or("IP_HASH_SALT", "")
# OpenRosa (ODK Collect, Enketo): the largest file attached to a submission, the largest
# request (sent to clients as X-OpenRosa-Accept-Content-Length), the Digest realm (the ODK
# passwords are bound to it) and how long a Digest nonce is valid (docs/odk.md).
OPENROSA_MAX_ATTACHMENT_BYTES: int = env_int("OPENROSA_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
OPENROSA_MAX_REQUEST_BYTES: int = env_int("OPENROSA_MAX_REQUEST_BYTES", 20 * 1024 * 1024)
OPENROSA_REALM: str = env_or("OPENROSA_REALM", "SIPAS")
OPENROSA_NONCE_SECONDS: int = env_int("OPENROSA_NONCE_SECONDS", 300)
# Paper-form files with more rows than this are imported by a Celery task.
PAPER_IMPORT_SYNC_MAX_ROWS: int = env_int("PAPER_IMPORT_SYNC_MAX_ROWS", 200)

# E-mail (petition replies and reminders). Without EMAIL_HOST, messages are written to the
# console with DEBUG on, and sent to an SMTP server on localhost otherwise.
_email_host = env_or("EMAIL_HOST", "")
MAILERS = {
    "default": (
        {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
        if DEBUG and not _email_host
        else {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host or "localhost",
                "port": env_int("EMAIL_PORT", 25),
                "username": env_or("EMAIL_HOST_USER", ""),
                "password": env_or("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_flag("EMAIL_USE_TLS", False),
                "timeout": 10,
            },
        }
    )
}
DEFAULT_FROM_EMAIL: str = env_or("DEFAULT_FROM_EMAIL", "no-reply@localhost")

# Petitions.
# Longest petition description accepted, in characters (Open311 allows 4,000).
PETITION_MAX_DESCRIPTION_CHARS: int = env_int("PETITION_MAX_DESCRIPTION_CHARS", 4000)
# Anonymous petitions per client (hashed IP) and period, web form and API together.
PETITION_SUBMIT_RATE: str = env_or("PETITION_SUBMIT_RATE", "10/hour")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["petition-submit"] = PETITION_SUBMIT_RATE
# Handlers are e-mailed about open petitions due within this many working days.
PETITION_REMIND_WORKING_DAYS: int = env_int("PETITION_REMIND_WORKING_DAYS", 2)
# Daily time of the reminder e-mails (TIME_ZONE), "HH:MM".
PETITION_REMIND_AT: str = env_or("PETITION_REMIND_AT", "07:30")
# Sender of petition e-mails; empty: Django's DEFAULT_FROM_EMAIL.
PETITION_FROM_EMAIL: str = env_or("PETITION_FROM_EMAIL", "")
# Open311: most requests one GET returns, and whether descriptions are public there.
OPEN311_MAX_REQUESTS: int = env_int("OPEN311_MAX_REQUESTS", 1000)
OPEN311_PUBLIC_DESCRIPTIONS: bool = env_flag("OPEN311_PUBLIC_DESCRIPTIONS", False)
# Open311 requests created per API key and period.
OPEN311_SUBMIT_RATE: str = env_or("OPEN311_SUBMIT_RATE", "600/hour")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["open311-submit"] = OPEN311_SUBMIT_RATE
_remind_hour, _remind_minute = (int(part) for part in PETITION_REMIND_AT.split(":"))
CELERY_BEAT_SCHEDULE["remind-petitions-near-deadline"] = {
    "task": "feedback.remind_petitions_near_deadline",
    "schedule": crontab(hour=_remind_hour, minute=_remind_minute, day_of_week="mon-sat"),
}

# Action plans (docs/action-plans.md).
# Owners (or the agency's staff) are e-mailed once when a task is due within this many
# working days, and once when it is overdue.
PLANS_REMIND_WORKING_DAYS: int = env_int("PLANS_REMIND_WORKING_DAYS", 3)
# Daily time of the task reminders (TIME_ZONE), "HH:MM".
PLANS_REMIND_AT: str = env_or("PLANS_REMIND_AT", "07:45")
# Largest evidence file attached to a progress note.
PLANS_EVIDENCE_MAX_BYTES: int = env_int("PLANS_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024)
_plans_hour, _plans_minute = (int(part) for part in PLANS_REMIND_AT.split(":"))
CELERY_BEAT_SCHEDULE["remind-plan-tasks"] = {
    "task": "plans.remind_tasks",
    "schedule": crontab(hour=_plans_hour, minute=_plans_minute, day_of_week="mon-sat"),
}

# Scoring.
# Values from fewer respondents are stored but flagged suppressed (not published).
MIN_PUBLISH_N: int = env_int("MIN_PUBLISH_N", 30)
# A run still "running" after this many minutes is taken for dead (its worker was stopped).
SCORING_RUN_TIMEOUT_MINUTES: int = env_int("SCORING_RUN_TIMEOUT_MINUTES", 120)
# Superseded and failed runs kept per round for audit (older ones are deleted).
SCORING_KEEP_RUNS: int = env_int("SCORING_KEEP_RUNS", 10)
# Nightly recompute of open and recently closed rounds, at this hour and minute (TIME_ZONE).
SCORING_NIGHTLY_AT: str = env_or("SCORING_NIGHTLY_AT", "02:00")
# A round closed less than this many days ago is still recomputed nightly.
SCORING_RECENT_DAYS: int = env_int("SCORING_RECENT_DAYS", 30)
# Without a broker (tasks in-process), the serving process recomputes every this many minutes
# each open round with responses submitted since its last run (scoring.scheduler); 0: never.
SCORING_AUTO_MINUTES: float = float(env_or("SCORING_AUTO_MINUTES", "1"))
# PostgreSQL work_mem of the scoring statement that groups answers per respondent.
SCORING_WORK_MEM: str = env_or("SCORING_WORK_MEM", "256MB")
# Raking. Which question gives each demographic role (its choice codes are the categories of
# the population margins); a run rakes the weights of a round that has margins uploaded.
RAKING_QUESTIONS: dict[str, str] = (
    env.json("RAKING_QUESTIONS")
    if env_or("RAKING_QUESTIONS", "")
    else {"sex": "A01", "age": "A02", "area": "A06"}
)
# Iterative proportional fitting stops after this many sweeps, or earlier once every margin
# is met within this relative tolerance.
RAKING_MAX_ITERATIONS: int = env_int("RAKING_MAX_ITERATIONS", 100)
RAKING_TOLERANCE: float = float(env_or("RAKING_TOLERANCE", "1e-9"))


def env_factor_bounds(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """Raking factor bounds "L,U" with 0 <= L <= 1 <= U (U may be inf); default when unset."""
    value = env_or(name, "")
    if not value:
        return default
    try:
        lower, upper = (float(part) for part in value.split(","))
    except ValueError:
        lower = upper = float("nan")
    if not 0 <= lower <= 1 <= upper:  # also refuses NaN
        raise ImproperlyConfigured(
            f"{name} must be two numbers L,U with 0 <= L <= 1 <= U (e.g. 0.3,3), not {value!r}."
        )
    return lower, upper


# Bounded raking: every raking factor (raked weight / design weight) stays within [L, U];
# "0,inf" rakes unbounded. A unit with a factor at a bound, or whose design effect from
# weighting (Kish, 1 + cv² of the weights) is above RAKING_DEFF_WARNING after raking, is
# flagged in the run's raking report and in the admin.
RAKING_FACTOR_BOUNDS: tuple[float, float] = env_factor_bounds("RAKING_FACTOR_BOUNDS", (0.3, 3.0))
try:
    RAKING_DEFF_WARNING: float = float(env_or("RAKING_DEFF_WARNING", "2"))
except ValueError:
    raise ImproperlyConfigured(
        f"RAKING_DEFF_WARNING must be a number, not {env_or('RAKING_DEFF_WARNING', '')!r}."
    ) from None
_hour, _minute = (int(part) for part in SCORING_NIGHTLY_AT.split(":"))
CELERY_BEAT_SCHEDULE["recompute-scores-nightly"] = {
    "task": "scoring.recompute_recent_rounds",
    "schedule": crontab(hour=_hour, minute=_minute),
}
# A scoring run or paper import that no worker took up this many minutes after it was queued,
# or whose worker died, is queued again by Celery beat (scoring.requeue_stalled_runs,
# feedback.requeue_stalled_paper_imports, every minute).
STALLED_WORK_MINUTES: int = env_int("STALLED_WORK_MINUTES", 5)
CELERY_BEAT_SCHEDULE["requeue-stalled-runs"] = {
    "task": "scoring.requeue_stalled_runs",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["requeue-stalled-paper-imports"] = {
    "task": "feedback.requeue_stalled_paper_imports",
    "schedule": 60.0,
}
CELERY_TIMEZONE = TIME_ZONE


# Webhooks (docs/webhooks.md).
# Seconds to wait before each retry of a failed delivery; one attempt, then one per delay:
# about a day in all by default, the waits growing about fivefold up to 8 hours.
def env_delays(name: str, default: list[float]) -> list[float]:
    """Comma-separated seconds, each >= 0; ``default`` when unset or empty."""
    value = env_or(name, "")
    if not value:
        return default
    try:
        delays = [float(part) for part in value.split(",")]
    except ValueError:
        delays = [-1.0]
    if not all(0 <= delay < 7 * 86400 for delay in delays):  # also refuses NaN
        raise ImproperlyConfigured(
            f"{name} must be seconds separated by commas (e.g. 5,30,120), not {value!r}."
        )
    return delays


WEBHOOK_RETRY_SCHEDULE: list[float] = env_delays(
    "WEBHOOK_RETRY_SCHEDULE", [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800]
)
# Seconds to connect to a receiver, and again for it to answer.
WEBHOOK_TIMEOUT_SECONDS: float = float(env_or("WEBHOOK_TIMEOUT_SECONDS", "10"))
# A subscription whose last this many events all failed every attempt is disabled (0: never).
WEBHOOK_DISABLE_AFTER_FAILURES: int = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 5)
# Allow receivers on private, loopback, link-local and reserved addresses (tests, internal
# deployments). Off: such targets are refused when saved and before each attempt.
WEBHOOK_ALLOW_PRIVATE_TARGETS: bool = env_flag("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# A due delivery no worker has taken this many seconds after it was queued is queued again.
WEBHOOK_REQUEUE_SECONDS: float = float(env_or("WEBHOOK_REQUEUE_SECONDS", "60"))
# How long a process trusts what it read of the subscriptions (which events are wanted).
WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS: float = float(
    env_or("WEBHOOK_SUBSCRIPTIONS_RECHECK_SECONDS", "5")
)
# Events (with the answers they carry) and their delivery log are deleted after this many
# days, once no delivery of theirs is pending.
WEBHOOK_KEEP_DAYS: int = env_int("WEBHOOK_KEEP_DAYS", 30)
CELERY_BEAT_SCHEDULE["webhooks-purge-old-events"] = {
    "task": "webhooks.purge_old_events",
    "schedule": crontab(hour=3, minute=30),
}
CELERY_BEAT_SCHEDULE["webhooks-queue-due-deliveries"] = {
    "task": "webhooks.queue_due_deliveries",
    "schedule": 60.0,
}

# Results API.
# Read API of published results (results.api): schema, filtering and throttle tiers. Anonymous
# clients, signed-in users and members of the consumer group (tokens of ministries, portals,
# researchers) are limited per client at these rates; see docs/results-api.md.
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = ["django_filters.rest_framework.DjangoFilterBackend"]
RESULTS_API_CONSUMER_GROUP: str = env_or("RESULTS_API_CONSUMER_GROUP", "api consumer")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] |= {
    "results-anon": env_or("RESULTS_ANON_RATE", "60/minute"),
    "results-user": env_or("RESULTS_USER_RATE", "300/minute"),
    "results-consumer": env_or("RESULTS_CONSUMER_RATE", "6000/minute"),
}
# Rendered result documents are cached under keys naming the published run, so a new
# publication is served at once; this only bounds how long unused entries stay.
RESULTS_CACHE_SECONDS: int = env.int("RESULTS_CACHE_SECONDS", default=24 * 3600)
# issue 14 reads: each process knows which run of each round is published and is told of a
# change by PostgreSQL (LISTEN/NOTIFY, results.publications); it also asks again after this
# many seconds, for writers that bypass the model signals and for a lagging read replica.
RESULTS_PUBLICATION_RECHECK_SECONDS: float = float(
    env_or("RESULTS_PUBLICATION_RECHECK_SECONDS", "5")
)
SPECTACULAR_SETTINGS = {
    "TITLE": "SIPAS citizen feedback and survey service API",
    "DESCRIPTION": (
        "Published SIPAS satisfaction scores per province and round, the indicator tree they "
        "are made of, survey rounds, units with their 2025 lineage, scoring runs, exports, "
        "and the endpoints apps use to submit responses. See docs/results-api.md."
    ),
    "VERSION": "v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_paging_and_traps",
    ],
    # Several models have a "status": name each set of choices in the schema.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "scoring.models.Run.Status",
        "PaperImportStatusEnum": "feedback.models.PaperImport.Status",
        "PetitionStatusEnum": "feedback.models.Petition.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Audit trail (audit/, django-auditlog): no IP address is stored, as nowhere in this service;
# the JSON of each change holds [before, after] per field.
AUDITLOG_DISABLE_REMOTE_ADDR = True
AUDITLOG_STORE_JSON_CHANGES = True
