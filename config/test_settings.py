"""Settings for the test suite: the normal settings with test-run isolation.

Values go into `os.environ` before the normal settings read it, so processes
that the tests start (uvicorn for browser tests) inherit the same values.
"""

import os
import tempfile
import uuid

# One id per test run keeps this run's Redis channels and queues apart from a
# developer's running app and from other test runs on the same Redis.
RUN_ID = os.environ.setdefault("TEST_RUN_ID", uuid.uuid4().hex[:12])

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("LIVE_UPDATES_CHANNEL_PREFIX", f"test-{RUN_ID}")
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"test-dispatch-{RUN_ID}")
os.environ.setdefault("DISPATCH_CONTROL_QUEUE", f"test-dispatch-control-{RUN_ID}")
os.environ.setdefault("IMPORT_QUEUE", f"test-imports-{RUN_ID}")
# Uploads of this run stay out of the checkout's var/imports.
os.environ.setdefault(
    "IMPORT_FILES_DIR", os.path.join(tempfile.gettempdir(), f"campaign-dispatcher-test-{RUN_ID}")
)
# Metrics in multiprocess mode, as in production: every process of the run
# (pytest, uvicorn, Celery workers) writes its values into this folder, which
# must be set before prometheus_client is first imported (ops/metrics.py).
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"campaign-dispatcher-metrics-{RUN_ID}"),
)
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
# Tests deliver through the simulated provider unless they choose another;
# those that send email start their own SMTP server (tests/smtp.py).
os.environ.setdefault("DELIVERY_PROVIDER", "dispatch.providers.SimulatedProvider")
os.environ.setdefault("DELIVERY_DELAY_MIN_SECONDS", "0")
os.environ.setdefault("DELIVERY_DELAY_MAX_SECONDS", "0")
os.environ.setdefault("DELIVERY_FAILURE_RATE", "0")
# The test client and the browser tests' uvicorn speak plain http, so the
# HTTPS settings, which are on by default with DEBUG off, stay off in tests.
# tests/config/test_deploy_settings.py checks those defaults in processes of
# its own.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")

from config.settings import *  # noqa: E402, F403

# Browser tests load the built JS and CSS straight from static/, without
# collectstatic, whatever the value of DEBUG.
WHITENOISE_USE_FINDERS = True

# Tests create many users; the fast hasher keeps that from dominating their
# time. Password checks behave the same, only weaker, which tests do not need.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
