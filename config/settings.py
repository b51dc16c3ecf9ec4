"""Settings, read from the environment.

DJANGO_ENV selects the defaults: `development` (the embedded default of `make run`), `test`, or
`production`, where every secret must come from the environment and the secure defaults hold
(`manage.py check --deploy` gives no warning). See README, "Configuration".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise environ.ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"
TESTING = DJANGO_ENV == "test"

# Off unless asked for (DEBUG=1), in every DJANGO_ENV: Django's debug pages list every URL and
# show tracebacks and settings to whoever reaches the server, `make run` included.
DEBUG = env.bool("DEBUG", default=False)
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / ".data")))

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-key-do-not-use-in-production")

# Tenants live at <slug>.<TENANT_HOST_SUFFIX>; the bare suffix is the public (platform) host.
TENANT_HOST_SUFFIX = env.str("TENANT_HOST_SUFFIX", default="localhost")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[TENANT_HOST_SUFFIX, f".{TENANT_HOST_SUFFIX}"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# ---------------------------------------------------------------------------------------------
# Applications. Placement is decided up front (STACK-NOTES): moving an app between the public and
# the tenant schemas later does not create its tables.
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_guid",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "accounts.admin_apps.StaffAdminConfig",
    "rest_framework",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.headless",
    "allauth.idp.oidc",
    "auditlog",
    "djstripe",
    "core",
    "accounts",
    "metering",
    "billing",
    "invoicing",
    "payments",
    "dunning",
    "portal",
    "adminpanel",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
# New tenants are cloned from a migrated template schema (seconds instead of a minute).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
# `SET search_path` once per connection and tenant switch, not before every statement (half of
# a portal page's round trips were that SET). Safe with the installed django-tenants: every
# switch (the tenant middleware, tenant-schemas-celery's task hooks, the ingest and webhook
# lanes, tenant_context/schema_context) goes through set_tenant, which forgets the recorded
# path, and so do close(), rollback() and savepoint_rollback() (a rolled-back SET is undone by
# PostgreSQL). tests/tenants/test_search_path.py holds it to that.
TENANT_LIMIT_SET_CALLS = env.bool("TENANT_LIMIT_SET_CALLS", default=True)
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    "config.health.HealthMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.request_meta.RequestIdMiddleware",
    "django_guid.middleware.guid_middleware",
    "config.api_errors.ApiErrorMiddleware",
    "tenants.middleware.CachedTenantMiddleware",
    "tenants.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.request_meta.AuditlogMiddleware",
    "accounts.middleware.StaffAccessMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

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
                "tenants.context_processors.tenant",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

# ---------------------------------------------------------------------------------------------
# Data stores. PostgreSQL is the only record of truth; Redis carries broker, cache, channel layer
# and rate-limit counters (losing it delays work but loses nothing).
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres:@localhost:5432/billing")}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A psycopg connection pool (Django's built-in support) for the web process, which config/asgi.py
# turns on (DB_POOL=1 unless set). Under ASGI Django runs each request's sync code on a thread of
# its own, and a thread-local connection dies with its thread: persistent connections do not help
# there (with CONN_MAX_AGE > 0 they pile up until "too many clients"), so every request opened a
# new PostgreSQL backend, ~18 ms of the entitlement read's 21 ms over HTTP (bench/entitlement.py).
# With the pool a request borrows an open connection and returns it when it finishes; django-
# tenants sets the tenant's search_path on the first query of every borrowed connection (its
# record of the path is per wrapper, and close() forgets it): tests/tenants/test_db_pool.py.
# Not for the other processes: Celery's prefork children, beat, the drainer and management
# commands run their queries on one long-lived thread, where CONN_MAX_AGE keeps the connection,
# and a pool opened before a fork would be shared by the children. Not for tests either (their
# transactions wrap one connection per test). Sizing, per web worker: the ingest, webhook and
# entitlement lanes' threads each keep one connection (2 x INGEST_THREADS + ENTITLEMENT_THREADS
# = 20 when all three are busy) and Django's requests borrow the rest; two workers at 28 leave
# 44 of the embedded server's max_connections (100) for the worker, beat, drainers and
# management commands. A request that
# finds none free within DB_POOL_TIMEOUT seconds gets the same 503 as a database outage.
DB_POOL = env.bool("DB_POOL", default=False)
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=2),
        "max_size": env.int("DB_POOL_MAX", default=28),
        "timeout": env.float("DB_POOL_TIMEOUT", default=5.0),
        # Idle connections above min_size are closed after this long (psycopg_pool's default: 10 min).
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=300.0),
        "name": "web",
    }
ORIGINAL_BACKEND = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://localhost:6379/0")


def _celery_redis_url(url: str) -> str:
    # kombu names unix sockets redis+socket://; redis-py and channels-redis take unix:// (STACK-NOTES).
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Keys carry the schema name, so nothing cached for one tenant is read by another.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "billing:channels"},
    }
}

CELERY_BROKER_URL = _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker and beat log through LOGGING below (JSON, card numbers masked) rather than Celery's
# own plain handler on the root logger, which would write records unmasked.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless this
# is set; config/celery.py applies Django's own rules instead (CONN_MAX_AGE, health checks), and
# the fixup then only recycles a connection every this many tasks.
CELERY_DB_REUSE_MAX = 1000
# TenantAwareScheduler runs each entry in every tenant schema.
CELERY_BEAT_SCHEDULE: dict = {
    "metering-storage-maintain": {"task": "metering.storage_maintain", "schedule": 3600.0},
    # Bill every due bill point and finalize drafts past their grace period (invoicing.tasks).
    "invoicing-billing-run": {"task": "invoicing.billing_run", "schedule": 3600.0},
    # Gauges of usage from customer ids no organization has (billing.tasks).
    "billing-unknown-customers-measure": {"task": "billing.unknown_customers_measure", "schedule": 300.0},
    # Re-find outbox messages whose dispatch on commit was lost (core.services.outbox).
    "core-outbox-sweep": {"task": "core.outbox_sweep", "schedule": 60.0},
    # Inbound gateway events stored whose apply was not scheduled (payments.tasks).
    "payments-gateway-events-apply": {"task": "payments.gateway_events_apply", "schedule": 60.0},
    # Dunning's retries, reminders and stages (dunning.tasks).
    "dunning-run": {"task": "dunning.run", "schedule": 3600.0},
    # Today's and yesterday's revenue analytics snapshots (adminpanel.tasks).
    "adminpanel-analytics-snapshot": {"task": "adminpanel.analytics_snapshot", "schedule": 3600.0},
    # The compliance dashboard's live checks, stored with when each last passed (adminpanel.compliance).
    "adminpanel-compliance-run": {"task": "adminpanel.compliance_run", "schedule": 86400.0},
}

# ---------------------------------------------------------------------------------------------
# Identity
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "allauth.account.auth_backends.AuthenticationBackend",
    # Grants permissions from staff roles; authenticates nobody, so it must not come first
    # (the first backend is the one recorded in sessions made by login()).
    "accounts.backends.StaffRoleBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# Setting a password from a mailed link (invitation, reset) verifies the address and signs in
# (second factor still asked if enrolled): no "verify your email", no second password prompt.
ACCOUNT_FORMS = {"reset_password_from_key": "accounts.forms.ResetPasswordKeyForm"}
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
# False turns allauth's limits off (an empty dict keeps its defaults, e.g. 30 logins a minute per IP).
ACCOUNT_RATE_LIMITS = False if TESTING else {"login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Billing")

# Headless JWT for user API sessions. Stateful validation looks the session up in the current
# tenant's schema, so a token issued by tenant A is refused on tenant B (STACK-NOTES: without it a
# stateless check accepts it).
HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app",)
HEADLESS_TOKEN_STRATEGY = "allauth.headless.tokens.strategies.jwt.JWTTokenStrategy"
HEADLESS_JWT_STATEFUL_VALIDATION_ENABLED = True
HEADLESS_JWT_PRIVATE_KEY = env.str("JWT_PRIVATE_KEY", default="")
HEADLESS_JWT_ALGORITHM = "RS256" if HEADLESS_JWT_PRIVATE_KEY else "HS256"
HEADLESS_SERVE_SPECIFICATION = False


def _oidc_private_key() -> str:
    """The OIDC provider's signing key: from the environment, or (outside production) a key made
    once under DATA_DIR so every process of one installation shares it."""
    key = env.str("OIDC_PRIVATE_KEY", default="")
    if key or PRODUCTION:
        return key or env.str("OIDC_PRIVATE_KEY")
    path = DATA_DIR / "oidc_private_key.pem"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # first writer wins; every process then reads its key
        tmp.unlink()
    return path.read_text()


IDP_OIDC_PRIVATE_KEY = _oidc_private_key()
IDP_OIDC_ACCESS_TOKEN_EXPIRES_IN = 3600

# ---------------------------------------------------------------------------------------------
# API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerAuthentication",
        "accounts.api.authentication.SessionPrincipalAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.permissions.DenyAll"],
    "DEFAULT_SCHEMA_CLASS": "accounts.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api_parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing platform API",
    "DESCRIPTION": "Usage ingestion, customers, plans, subscriptions and invoices. "
    "Authenticate with `Authorization: Bearer <api key | OAuth2 access token | JWT>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids without the version prefix (`meters_create`, not `v1_meters_create`).
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The events endpoint is a plain view (msgspec, no DRF): described by a stand-in.
    "PREPROCESSING_HOOKS": ["config.api_schema.events_endpoint_add"],
    # Three models have a `status`: each gets its own enum name in generated clients.
    "ENUM_NAME_OVERRIDES": {
        "OrganizationStatusEnum": "billing.models.OrganizationStatus",
        "SubscriptionStatusEnum": "billing.models.SubscriptionStatus",
        "InvoiceStatusEnum": "invoicing.models.InvoiceStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.api.responses.REFUND_STATUSES",
    },
}

# ---------------------------------------------------------------------------------------------
# Audit. Every model that holds money or customer state is registered in its app's ready().
AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_CID_GETTER = "django_guid.get_guid"
AUDITLOG_DISABLE_REMOTE_ADDR = False

# ---------------------------------------------------------------------------------------------
# Stripe through dj-stripe: one Stripe account per tenant schema.
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
# Where Stripe's API answers: Stripe itself, or localstripe (config.embedded starts one for `make run`
# and the tests and sets this). The gateway code reaches whichever by this setting alone.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
# Where the portal loads Stripe.js from (its card element): Stripe's own, or the one localstripe
# serves (config.embedded sets it beside STRIPE_API_BASE). Pages use this setting alone.
STRIPE_JS_URL = env("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Where PayPal's REST API answers: live by default, the sandbox, or the tests' local fake.
PAYPAL_API_BASE = env("PAYPAL_API_BASE", default="https://api-m.paypal.com")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_USE_NATIVE_JSONFIELD = True

# ---------------------------------------------------------------------------------------------
# Metering
INGEST_EVENTS_PER_SECOND_PER_KEY = env.int("INGEST_EVENTS_PER_SECOND_PER_KEY", default=250_000)
INGEST_EVENTS_PER_SECOND_PER_TENANT = env.int("INGEST_EVENTS_PER_SECOND_PER_TENANT", default=500_000)
# Event ids are remembered this long after first acceptance (exactly-once window); never less
# than a tenant's event window, so an event old enough to be accepted is old enough to be known.
EVENT_DEDUP_DAYS = max(35, env.int("EVENT_DEDUP_DAYS", default=40))
# Raw events are kept this long (partitions dropped after it); rollups are kept for good.
EVENT_RAW_RETENTION_DAYS = env.int("EVENT_RAW_RETENTION_DAYS", default=400)
DRAIN_BATCH_EVENTS = env.int("DRAIN_BATCH_EVENTS", default=20_000)
# Threads (each with its own database connection) per web worker for the ingestion fast lane.
INGEST_THREADS = env.int("INGEST_THREADS", default=8)
# Threads (each keeping a database connection) per web worker for the entitlement lane (dunning.lane).
ENTITLEMENT_THREADS = env.int("ENTITLEMENT_THREADS", default=4)
# Request bodies up to the ingestion limit (metering.ingest.MAX_BODY_BYTES); larger ones get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Outbox and outbound webhooks (core)
# Due messages older than this are the sweep's (younger ones are being dispatched on commit).
OUTBOX_SWEEP_GRACE_SECONDS = env.int("OUTBOX_SWEEP_GRACE_SECONDS", default=30)
# Finished (done or dead) messages are deleted this long after finishing; the delivery log stays.
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=30)
# Fernet keys (comma-separated) for secrets at rest: the first encrypts, all decrypt (core.crypto).
# Required in production; elsewhere empty means one key derived from SECRET_KEY.
if PRODUCTION:
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
else:
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# Webhook URLs resolving to private, loopback or link-local addresses are refused (SSRF) unless on.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=not PRODUCTION)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=3.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# After a rotation the previous secret keeps signing this long (both signatures are sent).
WEBHOOK_SECRET_OVERLAP_HOURS = env.int("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)

# ---------------------------------------------------------------------------------------------
# Web
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["config.formats"]  # datetimes with their zone (config/formats/en)
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"  # collectstatic target in production
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
# Links in emails sent from workers (no request to build them from): "{domain}" is the tenant's
# primary domain. `make run` serves plain HTTP on PORT.
TENANT_BASE_URL = env.str(
    "TENANT_BASE_URL",
    default="https://{domain}" if PRODUCTION else "http://{domain}:" + env.str("PORT", default="8000"),
)

# Operations: /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; without a token configured
# it answers loopback clients only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "VALIDATE_GUID": False, "RETURN_HEADER": True}
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation_id": {"()": "django_guid.log_filters.CorrelationId"}},
    "formatters": {
        # python-json-logger's, without Django's request object (its repr carries the query
        # string) and with anything like a card number masked (core.logs, PCI SAQ-A).
        "json": {
            "()": "core.logs.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "correlation_id": "request_id"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["correlation_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_guid": {"level": "WARNING"},
        # The SDK logs every API request and response at INFO: two records per gateway call on the
        # collection's hot path (bench/payments.py); our adapter logs what matters itself.
        "stripe": {"level": "WARNING"},
        # WeasyPrint logs every step of every PDF at INFO
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------------------------
# Security. Production defaults pass `manage.py check --deploy`; TLS terminates at the proxy.
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
