"""Unsubscribe tokens stay out of the logs that uvicorn, Django and Celery print."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from uvicorn.logging import AccessFormatter

from suppressions.redaction import REDACTED, RedactUnsubscribeTokens, redact
from suppressions.tokens import make_token
from tests.servers import start_app_server, stop_app_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]

TOKEN = make_token(7, 42, "ada@example.com", workspace_id=3)
# The token carries the address, base64-encoded: a log must show neither.
ENCODED_ADDRESS = TOKEN.split(":")[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/u/{TOKEN}", f"/u/{REDACTED}"),
        (f"/u/{TOKEN}/one-click", f"/u/{REDACTED}/one-click"),
        (f"GET /u/{TOKEN}?utm=x HTTP/1.1", f"GET /u/{REDACTED}?utm=x HTTP/1.1"),
        (
            f"see https://campaigns.example.com/u/{TOKEN}.",
            f"see https://campaigns.example.com/u/{REDACTED}.",
        ),
        (f'"/u/{TOKEN.replace(":", "%3A")}"', f'"/u/{REDACTED}"'),
        ("/campaigns/12/preview?recipient=3", "/campaigns/12/preview?recipient=3"),
        ("/u/", "/u/"),
    ],
    ids=["page", "one-click", "request-line", "full-url", "percent-encoded", "other", "empty"],
)
def test_redact_replaces_tokens(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_matches_unsubscribe_urls() -> None:
    # The pattern must follow suppressions/urls.py wherever the paths move.
    for name in ("suppressions:unsubscribe", "suppressions:one_click"):
        path = reverse(name, args=[TOKEN])

        redacted = redact(path)

        assert TOKEN not in redacted
        assert REDACTED in redacted


def access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn's access logger creates it."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def test_filter_keeps_access_record_format() -> None:
    record = access_record(f"/u/{TOKEN}")
    formatter = AccessFormatter(fmt='%(client_addr)s - "%(request_line)s" %(status_code)s')

    assert RedactUnsubscribeTokens().filter(record) is True

    line = formatter.format(record)
    assert line == f'127.0.0.1:5000 - "GET /u/{REDACTED} HTTP/1.1" 200 OK'


def test_filter_redacts_other_arguments_and_tracebacks() -> None:
    try:
        raise ValueError(f"could not post to https://example.com/u/{TOKEN}")
    except ValueError as exc:
        record = logging.LogRecord(
            "dispatch.engine", logging.ERROR, __file__, 1, "failed: %r", (exc,), sys.exc_info()
        )

    RedactUnsubscribeTokens().filter(record)

    text = logging.Formatter().format(record)
    assert TOKEN not in text
    assert ENCODED_ADDRESS not in text
    assert text.startswith(
        f"failed: ValueError('could not post to https://example.com/u/{REDACTED}')"
    )
    assert f"ValueError: could not post to https://example.com/u/{REDACTED}" in text


@pytest.mark.django_db
def test_django_request_warning_is_redacted(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # A one-click POST without its body is a 400, which django.request logs with its path.
    url = reverse("suppressions:one_click", args=[TOKEN])

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(url)

    assert response.status_code == 400
    warnings = [record.getMessage() for record in caplog.records if record.name == "django.request"]
    assert warnings == [f"Bad Request: /u/{REDACTED}/one-click"]
    assert TOKEN not in caplog.text


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` with config.settings in a new interpreter; the settings' LOGGING applies."""
    env = {name: value for name, value in os.environ.items() if name != "DOTENV_PATH"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DOTENV_PATH=str(tmp_path / "missing.env"),
        DEBUG="true",
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_app_logs_are_redacted(tmp_path: Path) -> None:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('dispatch.engine').warning('failed: %s', "
        f"'https://campaigns.example.com/u/{TOKEN}')"
    )

    result = run_python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"WARNING dispatch.engine failed: https://campaigns.example.com/u/{REDACTED}" in (
        result.stderr
    )
    assert TOKEN not in result.stderr


def test_celery_worker_logs_are_redacted(tmp_path: Path) -> None:
    # A worker replaces the root logger's handlers with Celery's own.
    code = (
        "import django, logging; django.setup(); "
        "from config.celery import app; "
        "app.log.setup_logging_subsystem(loglevel='INFO', colorize=False); "
        "logging.getLogger('dispatch.engine').warning('failed: %s', "
        f"'https://campaigns.example.com/u/{TOKEN}')"
    )

    result = run_python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"failed: https://campaigns.example.com/u/{REDACTED}" in result.stderr
    assert TOKEN not in result.stderr


def request_status(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_uvicorn_access_log_is_redacted(django_db_setup: None, tmp_path: Path) -> None:
    # uvicorn configures its loggers before it imports the app, as under bin/dev.
    log_path = tmp_path / "uvicorn.log"
    server = start_app_server(log_path)
    try:
        page_status = request_status(f"{server.base_url}/u/{TOKEN}")
        one_click_status = request_status(f"{server.base_url}/u/{TOKEN}/one-click", "POST")
    finally:
        stop_app_server(server)

    assert page_status == 200
    assert one_click_status == 400
    log = log_path.read_text(encoding="utf-8")
    assert f'"GET /u/{REDACTED} HTTP/1.1" 200' in log
    assert f'"POST /u/{REDACTED}/one-click HTTP/1.1" 400' in log
    assert f"Bad Request: /u/{REDACTED}/one-click" in log
    assert TOKEN not in log
    assert ENCODED_ADDRESS not in log
