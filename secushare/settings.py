"""SecuShare settings: one module, configured from environment variables.

Without any configuration SecuShare runs on the *embedded default*: SQLite and
blobs under ``var/``, mail printed to the console and kept as ``.eml`` files, and
background jobs on a broker kept in files, so no Redis is needed.  Every variable
is listed with its default in README.md.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from secushare import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.string("DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env.boolean("DEBUG", False)
DATABASE_URL = env.url(
    "DATABASE_URL",
    None,
    ("postgres", "postgresql", "sqlite", "postgis", "mysql"),
    host_required=False,
)
EMBEDDED = DATABASE_URL is None

# -- Secrets ------------------------------------------------------------------
SECRET_KEY = env.string("SECRET_KEY")
if SECRET_KEY is None:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off and "
            "DATABASE_URL is set. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    SECRET_KEY = env.generated_secret(DATA_DIR / "secret_key")
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")

# -- Where the site lives --------------------------------------------------
HOST = env.string("HOST", "127.0.0.1")
PORT = env.integer("PORT", 8000, minimum=1, maximum=65535)
SITE_URL = env.url("SITE_URL", f"http://{HOST}:{PORT}", ("http", "https")).rstrip("/")
_site = urlsplit(SITE_URL)
if _site.path or _site.query or _site.fragment:
    raise ImproperlyConfigured(
        f"SITE_URL must be the address of the site without a path, like "
        f"https://share.example.com, not {SITE_URL!r}."
    )
SITE_NAME = env.string("SITE_NAME", "SecuShare")
HTTPS = _site.scheme == "https"

ALLOWED_HOSTS = [_site.hostname]
if _site.hostname in ("127.0.0.1", "localhost", "0.0.0.0"):  # noqa: S104
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
_extra_hosts = env.string("EXTRA_ALLOWED_HOSTS") or ""
ALLOWED_HOSTS += [h.strip() for h in _extra_hosts.split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

# Behind nginx (or any proxy that sets these headers and strips client copies).
BEHIND_PROXY = env.boolean("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# -- Applications ---------------------------------------------------------------
INSTALLED_APPS = [
    "accounts.apps.AdminConfig",  # django.contrib.admin, logging in through accounts
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "secushare",
    "outbox",
    "accounts",
    "secupass",
    "deliveries",
]

MIDDLEWARE = [
    "secushare.middleware.ReleaseDatabaseMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "secushare.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.SetupMiddleware",
]

ROOT_URLCONF = "secushare.urls"
WSGI_APPLICATION = "secushare.wsgi.application"

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
                "django.template.context_processors.i18n",
                "secushare.context_processors.site",
            ],
        },
    },
]

# -- Database --------------------------------------------------------------------
if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "secushare.sqlite3",
            # The test database is a file, so a Celery worker started by a test sees it.
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
            # Each thread keeps its connection: opening one (with the PRAGMAs below) was
            # about 1 ms of every request.
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"].endswith((".postgresql", ".postgis")):
        # A pool per process rather than a connection per thread: gunicorn runs 64 threads
        # per process, and PostgreSQL allows 100 connections by default. A request takes a
        # connection from the pool and returns it when it ends (a streaming download as
        # soon as its body starts: secushare.middleware.ReleaseDatabaseMiddleware); when all
        # are busy it waits up to 10 s for one.
        DATABASES["default"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            "pool": {
                "min_size": 1,
                "max_size": env.integer("DATABASE_POOL_SIZE", 10, minimum=1),
                "timeout": 10,
            },
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- Cache (throttling) ------------------------------------------------------------
REDIS_URL = env.url("REDIS_URL", None, ("redis", "rediss", "unix"), host_required=False)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "secushare",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": DATA_DIR / "cache",
        }
    }

# -- Accounts and passwords ------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 3
# Failed logins: per client address, and per account from clients the owner has
# not logged in from before (see accounts/throttle.py).
LOGIN_FAILURES_PER_ADDRESS = env.integer("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURES_PER_ACCOUNT = env.integer("LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_THROTTLE_SECONDS = env.integer("LOGIN_THROTTLE_SECONDS", 15 * 60, minimum=1)

SESSION_COOKIE_AGE = env.integer("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

# -- Security headers ----------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = HTTPS and env.boolean("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", False)
# Preloading commits the whole domain and its subdomains to HTTPS for browsers'
# lifetimes and cannot be undone quickly, so it stays the operator's explicit choice
# (SECURE_HSTS_PRELOAD=true) and `check --deploy` does not ask for it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; worker-src 'self'; manifest-src 'self'"
)

# -- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = env.choice("LANGUAGE_CODE", "en", ("en", "de"))
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.string("TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

# -- Static files and storage -----------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.string("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "blobs"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "secushare.staticstorage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# -- Blob storage: the local folder or an S3-compatible object store --------------------
# local keeps the SXF1 blobs under MEDIA_ROOT. s3 keeps them in S3_BUCKET through
# django-storages' S3Storage (STORAGES["blobs"], its option names): tus uploads become
# multipart uploads, nothing is collected on a web node's disk, and level 3/4 ciphertext is
# handed out as presigned URLs valid for S3_PRESIGN_SECONDS. README.md, "Storage on S3",
# has the values for AWS S3, MinIO, Garage and Ceph RGW.
STORAGE_BACKEND = env.choice("STORAGE_BACKEND", "local", ("local", "s3"))
S3_PRESIGN_SECONDS = env.integer("S3_PRESIGN_SECONDS", 300, minimum=10, maximum=7 * 24 * 3600)
if STORAGE_BACKEND == "s3":
    import re as _re

    S3_BUCKET = env.string("S3_BUCKET")
    if not S3_BUCKET:
        raise ImproperlyConfigured(
            "STORAGE_BACKEND=s3 needs S3_BUCKET, the name of an existing bucket."
        )
    if not _re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", S3_BUCKET):
        raise ImproperlyConfigured(
            f"S3_BUCKET must be a bucket name (3 to 63 lower-case letters, digits, dots and "
            f"hyphens), not {S3_BUCKET!r}."
        )
    S3_ENDPOINT_URL = env.url("S3_ENDPOINT_URL", None, ("http", "https"))
    if S3_ENDPOINT_URL:
        S3_ENDPOINT_URL = S3_ENDPOINT_URL.rstrip("/")
        if urlsplit(S3_ENDPOINT_URL).path or urlsplit(S3_ENDPOINT_URL).query:
            raise ImproperlyConfigured(
                f"S3_ENDPOINT_URL must be the store's address without a path or bucket, like "
                f"https://s3.example.com:9000, not {S3_ENDPOINT_URL!r}."
            )
    # AWS needs the bucket's region; other stores mostly accept us-east-1 (Garage: its
    # s3_region, "garage" unless configured otherwise).
    S3_REGION = env.string("S3_REGION", "us-east-1" if S3_ENDPOINT_URL else None)
    if not S3_REGION:
        raise ImproperlyConfigured(
            "S3_REGION is required for AWS S3 (S3_ENDPOINT_URL unset): the bucket's region, "
            "like eu-central-1."
        )
    if not _re.fullmatch(r"[A-Za-z0-9_-]{1,64}", S3_REGION):
        raise ImproperlyConfigured(f"S3_REGION must be a region name, not {S3_REGION!r}.")
    S3_ADDRESSING_STYLE = env.choice(
        "S3_ADDRESSING_STYLE", "path" if S3_ENDPOINT_URL else "virtual", ("path", "virtual")
    )
    S3_ACCESS_KEY_ID = env.string("S3_ACCESS_KEY_ID")
    S3_SECRET_ACCESS_KEY = env.string("S3_SECRET_ACCESS_KEY")
    if bool(S3_ACCESS_KEY_ID) != bool(S3_SECRET_ACCESS_KEY):
        raise ImproperlyConfigured(
            "Set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or their _FILE variants), "
            "or neither."
        )
    if S3_ENDPOINT_URL and not S3_ACCESS_KEY_ID:
        raise ImproperlyConfigured(
            "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are required with S3_ENDPOINT_URL "
            "(only AWS can supply credentials from an instance role)."
        )
    STORAGES["blobs"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL,
            "region_name": S3_REGION,
            "addressing_style": S3_ADDRESSING_STYLE,
            "access_key": S3_ACCESS_KEY_ID,
            "secret_key": S3_SECRET_ACCESS_KEY,
            "signature_version": "s3v4",
            "querystring_expire": S3_PRESIGN_SECONDS,
            "file_overwrite": True,
        },
    }
    # Where browsers reach the store, when that differs from where the web nodes do (the
    # compose file's MinIO is "http://s3:9000" inside, and is reached through nginx).
    S3_PUBLIC_ENDPOINT_URL = env.url("S3_PUBLIC_ENDPOINT_URL", S3_ENDPOINT_URL, ("http", "https"))
    if S3_PUBLIC_ENDPOINT_URL:
        S3_PUBLIC_ENDPOINT_URL = S3_PUBLIC_ENDPOINT_URL.rstrip("/")
    # The browser fetches level 3/4 ciphertext from presigned URLs on this origin (the
    # bucket needs a CORS rule for SITE_URL; see README.md).
    if S3_PUBLIC_ENDPOINT_URL:
        _s3 = urlsplit(S3_PUBLIC_ENDPOINT_URL)
        _host = _s3.netloc if S3_ADDRESSING_STYLE == "path" else f"{S3_BUCKET}.{_s3.netloc}"
        S3_ORIGIN = f"{_s3.scheme}://{_host}"
    else:
        _aws = "s3.amazonaws.com" if S3_REGION == "us-east-1" else f"s3.{S3_REGION}.amazonaws.com"
        S3_ORIGIN = f"https://{_aws if S3_ADDRESSING_STYLE == 'path' else f'{S3_BUCKET}.{_aws}'}"
    CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", f"connect-src 'self' {S3_ORIGIN}", 1
    )
# Behind nginx: the internal location that serves MEDIA_ROOT (deploy/nginx.conf), e.g.
# "/_protected/blobs/". Level 3/4 ciphertext is then sent by nginx (X-Accel-Redirect).
ACCEL_REDIRECT_PREFIX = env.string("ACCEL_REDIRECT_PREFIX") or ""
if ACCEL_REDIRECT_PREFIX and not (
    ACCEL_REDIRECT_PREFIX.startswith("/") and ACCEL_REDIRECT_PREFIX.endswith("/")
):
    raise ImproperlyConfigured(
        f"ACCEL_REDIRECT_PREFIX must be a path that starts and ends with a slash, like "
        f"/_protected/blobs/, not {ACCEL_REDIRECT_PREFIX!r}."
    )

# -- Server master keys (wrap the delivery keys of levels 1 and 2) ---------------------
# "id:base64url-of-32-bytes", several separated by commas; the first wraps new
# deliveries, the others are still read (rotation: `manage.py rotate_master_key`).
MASTER_KEYS_SPEC = env.string("MASTER_KEYS")
if MASTER_KEYS_SPEC is None:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "MASTER_KEYS (or MASTER_KEYS_FILE) is required when DEBUG is off and "
            "DATABASE_URL is set. Generate one with: python manage.py generate_master_key"
        )
    MASTER_KEYS_SPEC = env.generated_master_key(DATA_DIR / "master_keys")
MASTER_KEYS = env.master_keys("MASTER_KEYS", MASTER_KEYS_SPEC)

# -- Deliveries ----------------------------------------------------------------------
DELIVERY_DEFAULT_DAYS = env.integer("DELIVERY_DEFAULT_DAYS", 14, minimum=1)
DELIVERY_MAX_DAYS = env.integer("DELIVERY_MAX_DAYS", 90, minimum=1)
if DELIVERY_DEFAULT_DAYS > DELIVERY_MAX_DAYS:
    raise ImproperlyConfigured("DELIVERY_DEFAULT_DAYS cannot be larger than DELIVERY_MAX_DAYS.")
MAX_FILE_SIZE = env.integer("MAX_FILE_SIZE", 50 * 1024**3, minimum=1)
MAX_FILES_PER_DELIVERY = env.integer("MAX_FILES_PER_DELIVERY", 200, minimum=1)
MAX_RECIPIENTS = env.integer("MAX_RECIPIENTS", 50, minimum=1)
USER_QUOTA = env.integer("USER_QUOTA", 200 * 1024**3, minimum=1)
# Largest body of one tus PATCH request; nginx's client_max_body_size must allow it.
TUS_MAX_CHUNK = env.integer("TUS_MAX_CHUNK", 64 * 1024**2, minimum=64 * 1024)
# Unfinished uploads untouched for this long are removed.
UPLOAD_EXPIRY_HOURS = env.integer("UPLOAD_EXPIRY_HOURS", 24, minimum=1)

# -- Mail ----------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <noreply@{_site.hostname}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = env.string("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.integer("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_SSL = env.boolean("EMAIL_USE_SSL", EMAIL_PORT == 465)
    EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", EMAIL_PORT == 587 and not EMAIL_USE_SSL)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true.")
    EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT", 30, minimum=1)
else:
    EMAIL_BACKEND = "outbox.backends.ConsoleAndFileBackend"
    EMAIL_FILE_PATH = Path(env.string("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))).resolve()
OUTBOX_MAX_ATTEMPTS = env.integer("OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
# A mail sending for longer than this (its worker died), or waiting this long past
# its time (its task message was lost), is queued again by the sweep.
OUTBOX_STUCK_SECONDS = env.integer("OUTBOX_STUCK_SECONDS", 300, minimum=10)

# -- Background jobs ---------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # Embedded default: a broker kept in files under var/, shared by the web
    # server and the worker that `make run` starts beside it.
    CELERY_BROKER_URL = "filesystem://"
    _queue = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        # Kombu's default is ./control, a folder in whatever directory the process started in.
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {"task": "outbox.tasks.sweep_outbox", "schedule": 60.0},
    "expire-deliveries": {"task": "deliveries.tasks.expire_deliveries", "schedule": 5 * 60.0},
    "remove-abandoned-uploads": {
        "task": "deliveries.tasks.remove_abandoned_uploads",
        "schedule": 15 * 60.0,
    },
    "remind-expiring": {"task": "deliveries.reminders.remind_expiring", "schedule": 60 * 60.0},
}
# Task modules that autodiscovery (which finds only tasks.py) does not load.
CELERY_IMPORTS = ["deliveries.reminders"]

# -- Logging -------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact_tokens": {"()": "secushare.logs.RedactTokensFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

os.makedirs(DATA_DIR, exist_ok=True)
os.makedirs(STATIC_ROOT, exist_ok=True)
if not REDIS_URL:
    for _folder in ("queue", "processed", "control"):
        os.makedirs(DATA_DIR / "broker" / _folder, exist_ok=True)
