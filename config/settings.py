"""Django settings for Campaign Dispatcher.

Every value comes from the environment (or `.env`, see config/env.py) with
development defaults that point at local services. `.env.example` lists them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dj_database_url
import phonenumbers
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Exchange, Queue

from config.env import (
    env_bool,
    env_choice,
    env_float,
    env_header_name,
    env_int,
    env_list,
    env_str,
    load_dotenv,
    require_at_least,
)

BASE_DIR = Path(__file__).resolve().parent.parent

load_dotenv(Path(os.environ.get("DOTENV_PATH", BASE_DIR / ".env")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment (or in .env), "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-debug-is-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Turbo sends the token from the page's csrf-token meta tag in this header, so
# forms inside partials rendered for live updates (outside the page's request,
# and so with no token of their own) still submit.
CSRF_HEADER_NAME = "HTTP_X_CSRF_TOKEN"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "campaigns",
    "dispatch",
    "live",
    "imports",
    "suppressions",
    "accounts",
    "audit",
    "ops",
    "api",
]

MIDDLEWARE = [
    # First, so that every response carries X-Request-ID and every log record
    # of the request its id (ops/middleware.py).
    "ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so that static files go out without a policy of their own.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Before anything reads a request body: JSON errors and the body limit under /api/.
    "api.middleware.ApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a signed-in user unless marked @login_not_required.
    "accounts.middleware.LoginRequiredMiddleware",
    # request.workspace and request.membership, from the session (accounts/workspaces.py).
    "accounts.workspaces.WorkspaceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # csp_nonce: the nonce of the page's Content-Security-Policy.
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: one PostgreSQL server shared by every web and worker process.
# CONN_MAX_AGE stays 0 by default because the async stream view and the
# thread-pool worker would otherwise keep one idle connection per thread.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/campaign_dispatcher"),
        conn_max_age=env_int("CONN_MAX_AGE", 0, minimum=0),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "campaigns:index"
LOGOUT_REDIRECT_URL = "accounts:login"
# Password reset links work once, for 3 days. That is Django's default, set
# here because the page that sends them names the period.
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600

# Login throttling (accounts/throttle.py): after this many failed sign-ins
# within the window, sign-in is refused for the account, or from the client
# address, until the window that began with the first failure ends.
LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# In DEBUG, WhiteNoise serves files straight from STATICFILES_DIRS, so the
# esbuild and Tailwind watchers' output shows up without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
if WHITENOISE_USE_FINDERS:
    # Without collectstatic, STATIC_ROOT does not exist and WhiteNoise warns
    # about it on every start, although the finders serve every file.
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")

# --- Request body limits (docs/security.md) ---------------------------------
# A request over either limit gets the 400 page (config/errors.py). Both
# follow MAX_RECIPIENT_ROWS, the most rows that the campaign form takes.
MAX_RECIPIENT_ROWS = env_int("MAX_RECIPIENT_ROWS", 1000, minimum=1)
# The campaign form posts up to six fields per recipient row (id, campaign,
# name, email, phone_number and DELETE), plus the CSRF token, the campaign's
# name and content and the formset's management fields. Django's default
# limit of 1,000 fields would reject a form of about 160 rows.
RECIPIENT_ROW_FIELDS = 6
FORM_FIELDS_BESIDES_ROWS = 100
_form_fields = MAX_RECIPIENT_ROWS * RECIPIENT_ROW_FIELDS + FORM_FIELDS_BESIDES_ROWS
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", _form_fields, minimum=1)
if _form_fields > DATA_UPLOAD_MAX_NUMBER_FIELDS:
    raise ValueError(
        f"DATA_UPLOAD_MAX_NUMBER_FIELDS={DATA_UPLOAD_MAX_NUMBER_FIELDS} is less than the "
        f"{_form_fields} fields that a campaign form of MAX_RECIPIENT_ROWS={MAX_RECIPIENT_ROWS} "
        "rows posts: raise it, or lower MAX_RECIPIENT_ROWS"
    )
# Bytes of a request body, not counting uploaded files. A form row whose
# name and email are 454 non-ASCII characters takes up to about 5 KiB once
# percent-encoded (9 bytes for each 3-byte character), and the message
# content gets 1 MiB. File uploads have their own limit, IMPORT_MAX_FILE_MEGABYTES.
RECIPIENT_ROW_BYTES = 5 * 1024
MESSAGE_CONTENT_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    MAX_RECIPIENT_ROWS * RECIPIENT_ROW_BYTES + MESSAGE_CONTENT_BYTES,
    minimum=64 * 1024,
)
# --- End of the request body limits ------------------------------------------

# --- JSON API (api/, docs/api.md) --------------------------------------------
# Recipients that one request may create or add.
API_MAX_RECIPIENTS_PER_REQUEST = env_int("API_MAX_RECIPIENTS_PER_REQUEST", 10_000, minimum=1)
# Bytes of an API request body; a longer body gets 413. The default gives
# each of API_MAX_RECIPIENTS_PER_REQUEST recipients RECIPIENT_ROW_BYTES,
# plus MESSAGE_CONTENT_BYTES for the content. DATA_UPLOAD_MAX_MEMORY_SIZE
# does not apply to API requests.
API_MAX_BODY_BYTES = env_int(
    "API_MAX_BODY_BYTES",
    API_MAX_RECIPIENTS_PER_REQUEST * RECIPIENT_ROW_BYTES + MESSAGE_CONTENT_BYTES,
    minimum=64 * 1024,
)
# Hours that an Idempotency-Key is remembered, with the response it got.
API_IDEMPOTENCY_KEY_HOURS = env_int("API_IDEMPOTENCY_KEY_HOURS", 24, minimum=1)
# Seconds that a request waits for another request with the same
# Idempotency-Key to finish before it gets 409 idempotency_key_in_progress.
API_IDEMPOTENCY_WAIT_SECONDS = env_float("API_IDEMPOTENCY_WAIT_SECONDS", 10.0, positive=True)
# Seconds that a signed live-stream URL from the API stays valid.
API_STREAM_URL_MAX_AGE_SECONDS = env_int("API_STREAM_URL_MAX_AGE_SECONDS", 300, minimum=10)
# --- End of the JSON API ------------------------------------------------------

# The address that links in messages start with, such as the unsubscribe
# links: the scheme, host and port that recipients reach this app at.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"SITE_URL={SITE_URL!r} is not an absolute URL; use one such as https://mail.example.com."
    )

# Region whose numbering plan reads a phone number written without a country
# code (an ISO 3166 code that libphonenumber supports, such as US, GB or DE).
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "US").upper()
if PHONE_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
    raise ImproperlyConfigured(
        f"PHONE_DEFAULT_REGION={PHONE_DEFAULT_REGION!r} is not a region that phone numbers "
        "can belong to; use a two-letter country code such as US, GB or DE."
    )

# CSV imports (imports/). Uploads are written to IMPORT_FILES_DIR, which the
# web processes and the workers must share, and removed once the import ends.
# A relative path is taken from the project folder.
IMPORT_FILES_DIR = BASE_DIR / env_str("IMPORT_FILES_DIR", "var/imports")
IMPORT_MAX_FILE_MEGABYTES = env_int("IMPORT_MAX_FILE_MEGABYTES", 200, minimum=1)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 2_000_000, minimum=1)
# Processes that validate a large import's rows (0: one per CPU core).
IMPORT_PROCESSES = env_int("IMPORT_PROCESSES", 0, minimum=0)
# A failed import's file is kept this long, so that it can be run again.
IMPORT_FILE_RETENTION_HOURS = env_int("IMPORT_FILE_RETENTION_HOURS", 24, minimum=1)

# Redis: the Celery broker and the live-update fan-out. It stores nothing that
# PostgreSQL does not also hold.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Prefix of the live-update keys in Redis. Environments (and test runs) that
# share a Redis server need prefixes of their own.
LIVE_UPDATES_CHANNEL_PREFIX = env_str("LIVE_UPDATES_CHANNEL_PREFIX", "campaign-dispatcher")
# Seconds between keep-alive comments on an idle live-update stream.
LIVE_UPDATES_KEEPALIVE_SECONDS = env_float("LIVE_UPDATES_KEEPALIVE_SECONDS", 15.0, positive=True)
# Shortest time between two renderings of a campaign's header, across all of
# its viewers (5 a second by default).
LIVE_HEADER_INTERVAL_SECONDS = env_float(
    "LIVE_HEADER_INTERVAL_SECONDS", 0.2, minimum=0.001, maximum=60.0
)
# Shortest time between two events on one viewer's stream: updates that
# arrive closer together go out as one event.
LIVE_EVENT_INTERVAL_SECONDS = env_float(
    "LIVE_EVENT_INTERVAL_SECONDS", 0.1, minimum=0.0, maximum=5.0
)
# Each campaign's stream of updates keeps about this many entries, so that a
# browser that reconnects gets what it missed. One entry contains the ids of
# one claim or flush (DISPATCH_BATCH_SIZE or DISPATCH_FLUSH_SIZE at most), or
# one header.
LIVE_STREAM_MAX_ENTRIES = env_int("LIVE_STREAM_MAX_ENTRIES", 1000, minimum=10)
# A campaign's stream is deleted this long after its last entry.
LIVE_STREAM_TTL_SECONDS = env_int("LIVE_STREAM_TTL_SECONDS", 3600, minimum=60)
# Seconds that the per-second delivery counts behind the header's chart stay
# in Redis after their last write (live/rates.py). A campaign that stopped
# shows the last minute of its deliveries for this long. A minute's hash stays
# in the chart's window for up to 60 s after its last write, so the minimum
# keeps every hash that the chart reads.
LIVE_RATE_HISTORY_SECONDS = env_int("LIVE_RATE_HISTORY_SECONDS", 86400, minimum=120)
# Complete seconds that the header's throughput averages over. The time to
# finish divides the queued and in-flight recipients by that throughput. At
# most 60, the chart's seconds, which are read anyway.
LIVE_THROUGHPUT_WINDOW_SECONDS = env_int("LIVE_THROUGHPUT_WINDOW_SECONDS", 5, minimum=1, maximum=60)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# Queues: worker loops (dispatch.process_campaign) go to the default queue.
# The short control tasks, dispatch.start_campaign and dispatch.sweep, go to
# a queue of their own, so that a worker that consumes only that queue runs
# them while loops occupy every thread of the others.
# Import jobs (imports.run_import) have a queue of their own too, so that a
# running campaign does not hold up an import into another one.
# A worker started without -Q consumes all three.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "dispatch")
DISPATCH_CONTROL_QUEUE = env_str("DISPATCH_CONTROL_QUEUE", "dispatch-control")
IMPORT_QUEUE = env_str("IMPORT_QUEUE", "imports")
# Each queue gets a direct exchange and a routing key of its own name, as
# Celery gives its default queue when CELERY_TASK_QUEUES is unset.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, DISPATCH_CONTROL_QUEUE, IMPORT_QUEUE)
]
CELERY_TASK_ROUTES = {
    "dispatch.start_campaign": {"queue": DISPATCH_CONTROL_QUEUE},
    "dispatch.sweep": {"queue": DISPATCH_CONTROL_QUEUE},
    "imports.run_import": {"queue": IMPORT_QUEUE},
    "imports.sweep": {"queue": DISPATCH_CONTROL_QUEUE},
    "api.sweep_idempotency": {"queue": DISPATCH_CONTROL_QUEUE},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker fetches a message only when one of its threads is free, and a task
# acknowledges its message when it starts. So a worker that waits for new
# messages has no unacknowledged one, except between fetching a message and
# starting it. kombu 5.7.0 fails to restore an unacknowledged message when the
# connection to Redis breaks while the worker waits, and the worker exits with
# "AttributeError: 'NoneType' object has no attribute 'hostname'"
# (tests/faults/test_redis_restart.py). The setting also keeps a busy worker
# from reserving messages that an idle worker could run. Celery 5.6.3 and
# 5.7.0 have it, for the Redis broker only.
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Delivery provider: a dotted path to a class with the interface in
# dispatch/providers/base.py. The default, ChannelRouter, sends each message
# through the provider of its channel (EMAIL_DELIVERY_PROVIDER and
# SMS_DELIVERY_PROVIDER below). Setting SimulatedProvider here simulates both.
DELIVERY_PROVIDER = env_str("DELIVERY_PROVIDER", "dispatch.providers.ChannelRouter")
# The simulated provider waits a random delay per recipient and fails by rule.
# Recipients whose email domain is DELIVERY_FAIL_EMAIL_DOMAIN, or whose phone
# number starts with DELIVERY_FAIL_PHONE_PREFIX, always fail permanently.
# Recipients at DELIVERY_FLAKY_EMAIL_DOMAIN fail transiently on their first
# attempt. The others fail transiently with probability DELIVERY_FAILURE_RATE
# (0.0 to 1.0). The development mail sink rejects the same two domains.
DELIVERY_DELAY_MIN_SECONDS = env_float("DELIVERY_DELAY_MIN_SECONDS", 1.0, minimum=0.0)
DELIVERY_DELAY_MAX_SECONDS = env_float("DELIVERY_DELAY_MAX_SECONDS", 3.0, minimum=0.0)
require_at_least(
    "DELIVERY_DELAY_MAX_SECONDS",
    DELIVERY_DELAY_MAX_SECONDS,
    "DELIVERY_DELAY_MIN_SECONDS",
    DELIVERY_DELAY_MIN_SECONDS,
)
DELIVERY_FAILURE_RATE = env_float("DELIVERY_FAILURE_RATE", 0.0, minimum=0.0, maximum=1.0)
DELIVERY_FAIL_EMAIL_DOMAIN = env_str("DELIVERY_FAIL_EMAIL_DOMAIN", "fail.example.com")
DELIVERY_FAIL_PHONE_PREFIX = env_str("DELIVERY_FAIL_PHONE_PREFIX", "+1202555019")
DELIVERY_FLAKY_EMAIL_DOMAIN = env_str("DELIVERY_FLAKY_EMAIL_DOMAIN", "flaky.example.com")

# Providers per channel, for DELIVERY_PROVIDER=dispatch.providers.ChannelRouter:
# dotted paths to provider classes for email and SMS messages. By default
# email goes through the EMAIL_* server and SMS is simulated.
EMAIL_DELIVERY_PROVIDER = env_str(
    "EMAIL_DELIVERY_PROVIDER", "dispatch.providers.EmailBackendProvider"
)
SMS_DELIVERY_PROVIDER = env_str("SMS_DELIVERY_PROVIDER", "dispatch.providers.SimulatedProvider")

# Email (dispatch.providers.EmailBackendProvider) goes through the default
# mailer, which the EMAIL_* variables configure. Django 6.1 deprecates the
# EMAIL_* settings in favour of MAILERS, so the variables keep their usual
# names but only MAILERS is set. SMTP by default. For an ESP, set
# EMAIL_BACKEND to one of django-anymail's backends, such as
# anymail.backends.postmark.EmailBackend, and put the ESP's keys in ANYMAIL_*
# variables (see ANYMAIL below). The SMTP variables are then unused.
SMTP_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_email_backend = env_str("EMAIL_BACKEND", SMTP_EMAIL_BACKEND)
_email_use_tls = env_bool("EMAIL_USE_TLS", False)
_email_use_ssl = env_bool("EMAIL_USE_SSL", False)
if _email_use_tls and _email_use_ssl:
    raise ImproperlyConfigured(
        "EMAIL_USE_TLS and EMAIL_USE_SSL are both on; turn one off "
        "(TLS: STARTTLS, usually port 587; SSL: implicit TLS, usually port 465)."
    )
# Seconds that each network operation of a send may take: the SMTP socket
# timeout, or the HTTP timeout of an anymail backend.
_email_timeout = env_float("EMAIL_TIMEOUT", 10.0, positive=True)
_smtp_options = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25, minimum=1, maximum=65535),
    "username": env_str("EMAIL_HOST_USER", ""),
    "password": env_str("EMAIL_HOST_PASSWORD", ""),
    "use_tls": _email_use_tls,
    "use_ssl": _email_use_ssl,
    "timeout": _email_timeout,
}
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": _smtp_options if _email_backend == SMTP_EMAIL_BACKEND else {},
    },
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Campaign Dispatcher <campaigns@localhost>")
# django-anymail settings: every ANYMAIL_<NAME> variable becomes ANYMAIL[NAME],
# for example ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_SENDGRID_API_KEY,
# ANYMAIL_MAILGUN_API_KEY and ANYMAIL_MAILGUN_SENDER_DOMAIN.
ANYMAIL: dict[str, object] = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
ANYMAIL.setdefault("REQUESTS_TIMEOUT", _email_timeout)

# Development SMTP sink (manage.py smtp_sink) and the page that lists what it
# captured (/dev/mail/, only with DEBUG on). A relative path is taken from the
# project folder.
MAIL_SINK_DIR = BASE_DIR / env_str("MAIL_SINK_DIR", "var/mail")

# SMS through a gateway of your own (dispatch.providers.WebhookSmsProvider):
# each message is POSTed as JSON to SMS_WEBHOOK_URL, signed with
# SMS_WEBHOOK_SECRET (HMAC-SHA256 in the X-Signature header).
SMS_WEBHOOK_URL = env_str("SMS_WEBHOOK_URL", "")
SMS_WEBHOOK_SECRET = env_str("SMS_WEBHOOK_SECRET", "")
SMS_WEBHOOK_TIMEOUT_SECONDS = env_float("SMS_WEBHOOK_TIMEOUT_SECONDS", 10.0, positive=True)

# SMS through Twilio (dispatch.providers.TwilioSmsProvider). Messages go from
# TWILIO_FROM_NUMBER, or through the Messaging Service when
# TWILIO_MESSAGING_SERVICE_SID is set.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID", "")
TWILIO_TIMEOUT_SECONDS = env_float("TWILIO_TIMEOUT_SECONDS", 10.0, positive=True)

# Dispatch engine (dispatch/engine.py). Each value is checked at startup:
# a value out of range raises ValueError here, instead of leaving a started
# campaign stuck in processing.
# Deliveries in progress at once in one worker loop (threads).
DELIVERY_CONCURRENCY = env_int("DELIVERY_CONCURRENCY", 64, minimum=1)
# Recipients claimed per database round trip.
DISPATCH_BATCH_SIZE = env_int("DISPATCH_BATCH_SIZE", 200, minimum=1)
# Worker loops woken per campaign when it starts or is resumed.
DISPATCH_WORKERS_PER_CAMPAIGN = env_int("DISPATCH_WORKERS_PER_CAMPAIGN", 4, minimum=1)
# Seconds a claim stays valid without renewal; a live worker renews its claims
# every third of this. After a worker dies, its claims return to the queue
# within this plus DISPATCH_SWEEP_INTERVAL_SECONDS.
DELIVERY_LEASE_SECONDS = env_float("DELIVERY_LEASE_SECONDS", 60.0, positive=True)
# Seconds between sweeps. The sweep also wakes campaigns whose retries have
# fallen due, so a retry starts at most about this long after its time when
# a worker thread is free. A loop with nothing due waits for the next retry,
# instead of exiting, when that retry is due within this long.
DISPATCH_SWEEP_INTERVAL_SECONDS = env_float("DISPATCH_SWEEP_INTERVAL_SECONDS", 15.0, positive=True)
# Outcomes are written in bulk every this many seconds or outcomes.
DISPATCH_FLUSH_INTERVAL_SECONDS = env_float("DISPATCH_FLUSH_INTERVAL_SECONDS", 0.2, positive=True)
DISPATCH_FLUSH_SIZE = env_int("DISPATCH_FLUSH_SIZE", 500, minimum=1)
# Attempts per recipient for transient errors, with exponential backoff and
# jitter between them: about BASE * 2^(n-1) seconds, at most MAX.
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 5, minimum=1)
DELIVERY_RETRY_BASE_SECONDS = env_float("DELIVERY_RETRY_BASE_SECONDS", 5.0, minimum=0.0)
DELIVERY_RETRY_MAX_SECONDS = env_float("DELIVERY_RETRY_MAX_SECONDS", 600.0, minimum=0.0)
require_at_least(
    "DELIVERY_RETRY_MAX_SECONDS",
    DELIVERY_RETRY_MAX_SECONDS,
    "DELIVERY_RETRY_BASE_SECONDS",
    DELIVERY_RETRY_BASE_SECONDS,
)
# Global rate limit per provider, across every worker on every host, in
# messages per second (0 means none); the burst is the bucket's size.
DELIVERY_RATE_LIMIT_PER_SECOND = env_float("DELIVERY_RATE_LIMIT_PER_SECOND", 0.0, minimum=0.0)
DELIVERY_RATE_LIMIT_BURST = env_int("DELIVERY_RATE_LIMIT_BURST", 0, minimum=0) or None
# Automatic pause: when failures since the last resume reach this count, or
# this share of processed recipients once at least AUTO_PAUSE_MIN_PROCESSED
# were processed (0 turns a rule off).
AUTO_PAUSE_FAILURE_COUNT = env_int("AUTO_PAUSE_FAILURE_COUNT", 0, minimum=0)
AUTO_PAUSE_FAILURE_RATE = env_float("AUTO_PAUSE_FAILURE_RATE", 0.0, minimum=0.0, maximum=1.0)
AUTO_PAUSE_MIN_PROCESSED = env_int("AUTO_PAUSE_MIN_PROCESSED", 100, minimum=0)

# Redis delivers a task again when a worker has not acknowledged it within
# the visibility timeout. Tasks acknowledge their message as they start and
# none is delayed (no countdown or ETA), so only a worker that dies between
# fetching and starting a task leaves a message for this.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# A sweep that no worker has started within one interval is discarded,
# because the next one is sent by then. So sweeps do not pile up while
# workers are busy.
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "dispatch.sweep",
        "schedule": DISPATCH_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": DISPATCH_SWEEP_INTERVAL_SECONDS},
    },
    "import-sweep": {
        "task": "imports.sweep",
        "schedule": DISPATCH_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": DISPATCH_SWEEP_INTERVAL_SECONDS},
    },
    # Expired Idempotency-Key records of the API (api/tasks.py), once an hour.
    "idempotency-sweep": {
        "task": "api.sweep_idempotency",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# "text" prints one plain line per record. "json" prints one JSON object per
# record, with the request, workspace, campaign, recipient and task ids that
# are known (ops/logs.py, docs/operations.md).
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ["text", "json"])
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    "filters": {
        # Unsubscribe tokens in request paths carry a recipient's address and
        # unsubscribe them, so logs show /u/[redacted] instead, and the signed
        # access of stream URLs as access=[redacted] (suppressions/redaction.py).
        "redact_tokens": {"()": "suppressions.redaction.RedactUnsubscribeTokens"},
        # The request, campaign and recipient ids bound in ops/context.py.
        "log_context": {"()": "ops.context.LogContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_tokens", "log_context"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "campaigns": {"level": LOG_LEVEL},
        "dispatch": {"level": LOG_LEVEL},
        "live": {"level": LOG_LEVEL},
        "suppressions": {"level": LOG_LEVEL},
        "imports": {"level": LOG_LEVEL},
        "accounts": {"level": LOG_LEVEL},
        "ops": {"level": LOG_LEVEL},
        "api": {"level": LOG_LEVEL},
        # The Twilio library logs every API request's URL and headers at INFO,
        # which a Celery worker started with --loglevel=info would print.
        "twilio": {"level": "WARNING"},
    },
}
if LOG_FORMAT == "json":
    # Django's default configuration gives these loggers plain-text handlers
    # of their own. In JSON mode they write through the console handler
    # instead, and only once. uvicorn's and Celery's handlers get the JSON
    # formatter when the app starts (ops/apps.py, config/celery.py).
    LOGGING["loggers"].update(
        {
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        }
    )

# --- Health checks and metrics (docs/operations.md) -------------------------
# Seconds that each check of /readyz (PostgreSQL, Redis, the Celery broker)
# may take before it counts as failed.
READINESS_CHECK_TIMEOUT_SECONDS = env_float(
    "READINESS_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30.0
)
# /metrics returns 404 unless this is set. With it set, a scrape must send
# "Authorization: Bearer <token>". At least 32 characters, such as the output
# of `python -c "import secrets; print(secrets.token_urlsafe(32))"`.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ValueError(
        f"METRICS_TOKEN has {len(METRICS_TOKEN)} characters: use at least 32, "
        "or leave it empty to turn /metrics off"
    )
# prometheus-client's multiprocess mode: every process writes its metrics to
# files in this folder, and a scrape adds them up. prometheus-client reads
# the variable itself, from the environment (or .env, loaded above) of each
# process, before ops/metrics.py is imported.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if _metrics_dir and not os.path.isdir(_metrics_dir):
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={_metrics_dir!r} is not a folder: create it (empty) "
        "before the processes start, or unset the variable"
    )
# Seconds that the Redis commands behind the queue-length metric may take.
METRICS_REDIS_TIMEOUT_SECONDS = 1.0
# --- End of health checks and metrics ----------------------------------------

# --- HTTPS, security headers and the Content Security Policy ----------------
# docs/security.md explains each one. With DEBUG off, every HTTPS setting is
# on unless the environment turns it off. With DEBUG on, they are off, so
# that development works over plain http.
_https = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
# Load balancers and orchestrators often probe over plain http inside the
# network, and a probe that is redirected to https counts as failed. The
# probes' responses contain no secret.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _https)
# Strict-Transport-Security: SecurityMiddleware sends it on HTTPS responses
# only. A browser that received it uses HTTPS alone for this host, and with
# SECURE_HSTS_INCLUDE_SUBDOMAINS for the host's subdomains, for this many
# seconds (one year by default).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _https)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _https)
# Behind a proxy that terminates TLS: the header that the proxy sets to
# "https" on HTTPS requests, such as X-Forwarded-Proto. Only set it when the
# proxy always sets or replaces that header, because a client could send it.
_proxy_ssl_header = env_header_name("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SECURE_REFERRER_POLICY = env_choice(
    "SECURE_REFERRER_POLICY",
    "same-origin",
    [
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    ],
)
SECURE_CROSS_ORIGIN_OPENER_POLICY = env_choice(
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "same-origin",
    ["same-origin", "same-origin-allow-popups", "unsafe-none"],
)
X_FRAME_OPTIONS = "DENY"
# Pages load only this app's own scripts and styles, plus the <style> that
# Turbo's progress bar adds, which carries the page's nonce (the csp-nonce
# meta tag in templates/base.html). No inline script, style attribute or
# event handler runs. The live-update streams are same-origin, so
# connect-src 'self' admits them. The frames that show a message's HTML get
# a policy of their own (dispatch/message_frames.py).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
# --- End of HTTPS, security headers and the Content Security Policy ---------
