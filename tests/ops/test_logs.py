"""Request ids, the ids bound to log records, and JSON log lines with redaction."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from config.celery import bind_task_ids, redact_worker_logs, unbind_task_ids
from dispatch.engine import run_campaign
from ops import context
from ops.context import LogContextFilter
from ops.logs import JsonFormatter
from suppressions.redaction import RedactUnsubscribeTokens
from tests.dispatch.fakes import TEST_ENGINE_SETTINGS, RecordingProvider
from tests.servers import PROJECT_ROOT

pytestmark = pytest.mark.django_db

TOKEN_PATH = "/u/YWRhQGV4YW1wbGUuY29t:1tXyZa:abcdefSECRET"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Capture django.request records as the console handler writes them in JSON mode."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactUnsubscribeTokens())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def parse(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_id_generated(anonymous_client: Client):
    response = anonymous_client.get("/healthz")

    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    assert int(request_id, 16) >= 0


def test_request_id_echoed(anonymous_client: Client):
    response = anonymous_client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a:42")

    assert response["X-Request-ID"] == "lb-7f3a:42"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "new\nline", 'quote"d'])
def test_request_id_invalid_replaced(anonymous_client: Client, incoming: str):
    response = anonymous_client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


def test_request_log_json_redacted(anonymous_client: Client, json_lines: io.StringIO):
    response = anonymous_client.get(TOKEN_PATH, HTTP_X_REQUEST_ID="req-123")

    assert response.status_code == 400
    entries = parse(json_lines)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["request_id"] == "req-123"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "django.request"
    assert entry["message"] == "Bad Request: /u/[redacted]"
    assert "SECRET" not in json_lines.getvalue()
    assert "timestamp" in entry


def test_signed_in_request_log_has_workspace(client: Client, json_lines: io.StringIO):
    from tests.factories import operator_workspace

    response = client.get("/campaigns/987654321", HTTP_X_REQUEST_ID="req-ws")

    assert response.status_code == 404
    entry = parse(json_lines)[0]
    assert entry["request_id"] == "req-ws"
    assert entry["workspace_id"] == operator_workspace().pk


def test_json_formatter_exception_redacted():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactUnsubscribeTokens())
    logger = logging.getLogger("tests.ops.exceptions")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad path {TOKEN_PATH}")
        except ValueError:
            logger.exception("lookup failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    entry = json.loads(stream.getvalue())
    assert entry["message"] == "lookup failed"
    assert "ValueError: bad path /u/[redacted]" in entry["exception"]
    assert "SECRET" not in stream.getvalue()


def test_extra_ids_win_over_bound():
    record: Any = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.campaign_id = 5

    with context.bind(campaign_id=9, recipient_id=3):
        LogContextFilter().filter(record)

    assert record.campaign_id == 5
    assert record.recipient_id == 3


def test_engine_records_carry_ids(make_campaign, caplog):
    provider = RecordingProvider(permanent={"lost@example.com": "mailbox does not exist"})
    campaign = make_campaign(recipients=[{"name": "Lost", "email": "lost@example.com"}])
    recipient = campaign.recipients.get()
    assert campaign.start()
    caplog.handler.addFilter(LogContextFilter())

    with caplog.at_level(logging.INFO, logger="dispatch.engine"):
        run_campaign(campaign.pk, provider, TEST_ENGINE_SETTINGS)

    failures = [r for r in caplog.records if "permanent delivery error" in r.getMessage()]
    assert len(failures) == 1
    failure: Any = failures[0]
    assert failure.campaign_id == campaign.pk
    assert failure.recipient_id == recipient.pk
    assert failure.attempt == 1
    assert failure.workspace_id == campaign.workspace_id
    started: list[Any] = [r for r in caplog.records if "worker loop started" in r.getMessage()]
    assert started[0].campaign_id == campaign.pk
    assert not hasattr(started[0], "recipient_id")


def test_celery_handlers_get_json(settings):
    settings.LOG_FORMAT = "json"
    stream = io.StringIO()
    logger = logging.Logger("tests.ops.celery")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)

    redact_worker_logs(logger=logger)

    class Task:
        name = "dispatch.sweep"

    bind_task_ids(task_id="task-1", task=Task())
    try:
        logger.warning("unsubscribe %s", TOKEN_PATH)
    finally:
        unbind_task_ids(task_id="task-1")
    logger.warning("after the task")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "unsubscribe /u/[redacted]"
    assert first["task_id"] == "task-1"
    assert first["task_name"] == "dispatch.sweep"
    assert "task_id" not in second


def test_log_format_json_setting_end_to_end():
    """Configure logging from the settings with LOG_FORMAT=json in a new process."""
    code = (
        "import django, logging; django.setup(); "
        "from ops import context; "
        "logging.getLogger('dispatch.engine').info('hello'); "
        "ctx = context.bind(campaign_id=4, request_id='r-1'); ctx.__enter__(); "
        f"logging.getLogger('django.request').warning('Not Found: %s', {TOKEN_PATH!r}); "
        "logging.getLogger('some.library').warning('root handler')"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.test_settings", LOG_FORMAT="json")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["logger"] for e in entries] == ["dispatch.engine", "django.request", "some.library"]
    assert entries[0]["message"] == "hello"
    assert "campaign_id" not in entries[0]
    assert entries[1]["message"] == "Not Found: /u/[redacted]"
    assert entries[1]["campaign_id"] == 4
    assert entries[1]["request_id"] == "r-1"
    assert entries[2]["level"] == "WARNING"
    assert "SECRET" not in result.stderr
