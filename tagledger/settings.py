"""Django settings, read from the environment (see .env.example for every variable)."""

import contextlib
import ipaddress
import os
import re
import secrets
import stat
from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import ConfigurationError, env_bool, env_choice, env_int, env_list, env_str


def _private(path: Path) -> None:
    """Take group and other permissions away: the data dir holds password hashes and sessions."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    try:
        path.chmod(mode & 0o700)
    except PermissionError:
        raise ConfigurationError(
            f"{path} is open to other users (mode {mode:o}) and this user may not change that: "
            f"chmod go-rwx {path}, or point TAGLEDGER_DATA_DIR at a directory of this user's"
        ) from None


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("TAGLEDGER_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
_private(DATA_DIR)


def _secret_key() -> str:
    """The configured key, else one generated once and kept in the data dir (embedded mode)."""
    configured = env_str("TAGLEDGER_SECRET_KEY")
    if configured:
        return configured
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


def _private_sqlite(name: str) -> None:
    """Create the database file 0600 before SQLite does (it would make it 0644); its -wal and -shm
    files take the database file's mode. Files of an older install are tightened the same way."""
    if name in {"", ":memory:"} or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite reports the missing directory itself
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if file.exists():
            _private(file)


def _database(url: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as error:  # the library raises several types for malformed URLs
        raise ConfigurationError(f"DATABASE_URL is not a valid database URL: {error}") from None
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # WAL lets the web process read while a worker writes; IMMEDIATE plus a busy timeout
        # makes concurrent writers queue instead of failing with "database is locked".
        config["CONN_MAX_AGE"] = 0
        _private_sqlite(str(config["NAME"]))
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    elif engine != "django.db.backends.postgresql":
        raise ConfigurationError("DATABASE_URL must be a postgres:// or sqlite:// URL")
    return config


SECRET_KEY = _secret_key()
DEBUG = env_bool("TAGLEDGER_DEBUG", False)
ALLOWED_HOSTS = env_list("TAGLEDGER_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("TAGLEDGER_CSRF_TRUSTED_ORIGINS", [])
# Read pages and the API without login; watching and polling stay staff-only either way.
TAGLEDGER_PUBLIC = env_bool("TAGLEDGER_PUBLIC", False)


def _base_url() -> str:
    """Where people reach this instance, for the links in notifications (made outside any request,
    so the host cannot come from one); empty: the links are paths alone."""
    from urllib.parse import urlsplit

    url = (env_str("TAGLEDGER_BASE_URL", "") or "").rstrip("/")
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is no number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or not url.isprintable()
        or " " in url
    ):
        raise ConfigurationError(
            f"TAGLEDGER_BASE_URL={url!r:.200} must be an http(s) URL without user, query or fragment, "
            "e.g. https://tagledger.example.com"
        )
    return url


TAGLEDGER_BASE_URL = _base_url()
# Events per notification: a poll that moves 50 tags sends each subscription one message, not 50
# (1: a message per event).
TAGLEDGER_NOTIFY_BATCH = env_int("TAGLEDGER_NOTIFY_BATCH", 100, minimum=1)


def _metrics_token() -> str:
    """A bearer token that lets a scraper read /metrics without a session; empty: none does."""
    token = env_str("TAGLEDGER_METRICS_TOKEN", "") or ""
    if token and (len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token):
        raise ConfigurationError(
            "TAGLEDGER_METRICS_TOKEN must be at least 16 printable ASCII characters without spaces "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


TAGLEDGER_METRICS_TOKEN = _metrics_token()


def _hook_token() -> str:
    """The token in /hooks/registry/<token> that lets registries' push events trigger polls of any
    watched repository; empty: only repositories' own tokens do (manage.py hooks token)."""
    token = env_str("TAGLEDGER_HOOK_TOKEN", "") or ""
    # It is part of a URL: only characters that need no escaping there.
    if token and (len(token) < 16 or not re.fullmatch(r"[A-Za-z0-9._~-]+", token)):
        raise ConfigurationError(
            "TAGLEDGER_HOOK_TOKEN must be at least 16 of A-Z a-z 0-9 . _ ~ - "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


TAGLEDGER_HOOK_TOKEN = _hook_token()
# Push events poll a repository at most once per this many seconds: a burst of pushes gives one
# poll at once and one more after this gap (history.triggers).
TAGLEDGER_HOOK_MIN_INTERVAL = env_int("TAGLEDGER_HOOK_MIN_INTERVAL", 2, minimum=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # login throttling; its admin pages list lockouts, and deleting one lifts it
    "catalog",
    "history",
    "tagledger.tokens",  # API tokens: Authorization: Bearer for scripts and CI
    "ninja",  # serves the API docs' Swagger UI from /static/, not a CDN
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tagledger.security.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the lockout page
]

ROOT_URLCONF = "tagledger.urls"
WSGI_APPLICATION = "tagledger.wsgi.application"

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

DATABASES = {"default": _database(env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'tagledger.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared between the web process and the workers, which a per-process cache would not be.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "tagledger_cache",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Axes first: it refuses a locked-out client before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "history:home"
LOGOUT_REDIRECT_URL = "history:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TAGLEDGER_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's output (the Docker image); without it WhiteNoise serves the source folders.
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Database sessions that refuse a cookie no session could have, before the database sees it.
SESSION_ENGINE = "tagledger.sessions"

# Served over HTTPS: Secure cookies, HSTS, and plain HTTP redirected to HTTPS.
TAGLEDGER_HTTPS = env_bool("TAGLEDGER_HTTPS", False)
# A reverse proxy in front, which sets X-Forwarded-Proto and appends the client to X-Forwarded-For.
# Only with the app's port unreachable except through it: otherwise clients could forge both.
TAGLEDGER_BEHIND_PROXY = env_bool("TAGLEDGER_BEHIND_PROXY", False)
# TAGLEDGER_SECURE_COOKIES is the older, narrower setting (Secure cookies only): still read, so a
# deployment that set it keeps its Secure cookies.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = TAGLEDGER_HTTPS or env_bool("TAGLEDGER_SECURE_COOKIES", False)
SECURE_SSL_REDIRECT = TAGLEDGER_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # compose's healthcheck asks over plain HTTP from inside
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if TAGLEDGER_HTTPS else 0
# Other hosts of the parent domain are not tagledger's to commit to HTTPS, nor is the preload list.
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = False
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"] if TAGLEDGER_HTTPS else []
if TAGLEDGER_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Login throttling (django-axes): a client is refused for the cool-off after this many failed
# sign-ins for one username, or five times as many for all usernames, from one address.
AXES_FAILURE_LIMIT = env_int("TAGLEDGER_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TAGLEDGER_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# Not by username alone: anyone could then lock the admin out. Failures count by (username,
# address) and by address; tagledger.security.LoginThrottle gives the second its higher bound.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "tagledger.security.LoginThrottle"
AXES_CLIENT_IP_CALLABLE = "tagledger.security.client_address"
AXES_USERNAME_CALLABLE = "tagledger.security.client_username"
AXES_LOCKOUT_CALLABLE = "tagledger.security.locked_out"
# A success does not clear failures: clearing by address would let one valid account reset the
# count against every other username tried from the same address.
AXES_RESET_ON_SUCCESS = False

# Celery: the filesystem broker needs no service (embedded mode); Redis in production.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue = DATA_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),  # kombu's default is ./control
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Every 15 s, dispatch claims the repositories due for a poll and enqueues their polls; one that
# waited in the queue past the next is useless, so it expires.
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-polls": {"task": "history.tasks.dispatch", "schedule": 15.0, "options": {"expires": 14}},
    # Notification deliveries whose retry is due (and any whose queued task was lost).
    "deliver-due": {"task": "history.tasks.deliver_due", "schedule": 15.0, "options": {"expires": 14}},
    # Notifications of polls whose fan-out was lost (the broker was down as the poll ended).
    "notify-catch-up": {
        "task": "history.tasks.notify_catch_up",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
}

# Registry client: where docker-style credentials live (never in the database).
DOCKER_CONFIG = env_str("DOCKER_CONFIG", str(Path.home() / ".docker"))
REGISTRY_TIMEOUT = env_int("TAGLEDGER_REGISTRY_TIMEOUT", 30, minimum=1)
# At most this many of a registry's request slots (its `concurrency`, shared by all workers) for
# one poll. By default a poll may take them all: raising a registry's concurrency is then the one
# knob that makes its polls faster. Lower it to let polls of one registry run side by side.
TAGLEDGER_POLL_THREADS = env_int("TAGLEDGER_POLL_THREADS", 64, minimum=1)
# A poll sends no new request after this many seconds; the tags it did not reach are reported
# unchecked (a partial poll) and the next poll carries on. Bounds how long a registry that answers
# slowly, or drips its bytes, can hold a worker and the repository's lease.
TAGLEDGER_POLL_DEADLINE = env_int("TAGLEDGER_POLL_DEADLINE", 20 * 60, minimum=10)
# On registries with the OCI referrers API, each poll asks again about the builds tags point to
# whose referrers (signatures, attestations added after the push) were last asked about this many
# seconds ago, at most TAGLEDGER_REFERRERS_RECHECK_BUILDS of them (0: never asked again).
TAGLEDGER_REFERRERS_RECHECK = env_int("TAGLEDGER_REFERRERS_RECHECK", 3600, minimum=60)
TAGLEDGER_REFERRERS_RECHECK_BUILDS = env_int("TAGLEDGER_REFERRERS_RECHECK_BUILDS", 20, minimum=0)
# Stop polling a registry when its ratelimit-remaining header reaches this (Docker Hub pulls).
TAGLEDGER_RATE_LIMIT_FLOOR = env_int("TAGLEDGER_RATE_LIMIT_FLOOR", 10, minimum=0)
# A version with no new build for this long and no floating tag pointing into it is inactive (EOL).
TAGLEDGER_INACTIVE_AFTER_DAYS = env_int("TAGLEDGER_INACTIVE_AFTER_DAYS", 90, minimum=1)


def _notify_allow() -> list[str]:
    """Host names and networks (CIDR) webhooks may reach although they are not public: a
    self-hosted Mattermost on the LAN. Everything else must resolve to public addresses."""
    entries = env_list("TAGLEDGER_NOTIFY_ALLOW", [])
    for entry in entries:
        with contextlib.suppress(ValueError):
            ipaddress.ip_network(entry, strict=False)
            continue
        labels = entry.rstrip(".").split(".")
        if not all(0 < len(label) <= 63 and set(label.lower()) <= _HOST_CHARACTERS for label in labels):
            raise ConfigurationError(
                f"TAGLEDGER_NOTIFY_ALLOW: {entry!r} is neither a host name nor an address or network "
                "(e.g. chat.internal,10.1.0.0/16)"
            )
    return entries


_HOST_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
TAGLEDGER_NOTIFY_ALLOW = _notify_allow()
# A webhook's answer must be complete within this many seconds (connecting included).
TAGLEDGER_NOTIFY_TIMEOUT = env_int("TAGLEDGER_NOTIFY_TIMEOUT", 10, minimum=1)
# Attempts per delivery before it fails; the waits between them double from TAGLEDGER_NOTIFY_BACKOFF
# seconds (with jitter, at most an hour): 8 attempts over about an hour by default.
TAGLEDGER_NOTIFY_ATTEMPTS = env_int("TAGLEDGER_NOTIFY_ATTEMPTS", 8, minimum=1)
TAGLEDGER_NOTIFY_BACKOFF = env_int("TAGLEDGER_NOTIFY_BACKOFF", 30, minimum=0)
# A subscription whose deliveries failed this many attempts in a row is disabled until re-enabled.
TAGLEDGER_NOTIFY_DISABLE_AFTER = env_int("TAGLEDGER_NOTIFY_DISABLE_AFTER", 10, minimum=1)

LOG_LEVEL = env_choice("TAGLEDGER_LOG_LEVEL", "info", {"debug", "info", "warning", "error"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {app: {"level": LOG_LEVEL.upper()} for app in ("tagledger", "catalog", "history")},
}
