"""Failure reasons are short, one line and free of unsubscribe tokens, in the log and the rows."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

from campaigns.models import DeliveryAttempt, Recipient
from dispatch.engine import run_campaign
from dispatch.providers import PermanentDeliveryError, TransientDeliveryError
from dispatch.providers.base import MAX_REASON_CHARACTERS, short_reason
from dispatch.providers.email import classify_email_error
from suppressions.redaction import REDACTED
from suppressions.tokens import unsubscribe_urls
from tests.dispatch.fakes import TEST_ENGINE_SETTINGS, RecordingProvider

PAGE_URL = unsubscribe_urls(7, 42, "ada@example.com", workspace_id=3)[0]
TOKEN = PAGE_URL.rsplit("/", 1)[1]
# A message as an ESP's error response might repeat it, with the link and a long body.
ECHOED_MESSAGE = {
    "To": "ada@example.com",
    "TextBody": f"Dear Ada,\n{'Our news. ' * 400}\nUnsubscribe: {PAGE_URL}",
}


def test_short_reason_keeps_short_text() -> None:
    assert short_reason("SMTP server replied 550 mailbox unavailable") == (
        "SMTP server replied 550 mailbox unavailable"
    )


def test_short_reason_cuts_long_text() -> None:
    reason = short_reason("x" * 10_000)

    assert len(reason) == MAX_REASON_CHARACTERS
    assert reason == "x" * (MAX_REASON_CHARACTERS - 1) + "…"


def test_short_reason_joins_lines_and_redacts() -> None:
    reason = short_reason(f"rejected:\n  {PAGE_URL}\r\nFORGED LOG LINE")

    assert reason == f"rejected: {PAGE_URL.removesuffix(TOKEN)}{REDACTED} FORGED LOG LINE"


@pytest.mark.parametrize("error_class", [TransientDeliveryError, PermanentDeliveryError])
def test_delivery_error_message_is_short(error_class: type[Exception]) -> None:
    error = error_class(json.dumps(ECHOED_MESSAGE, indent=2))

    assert len(str(error)) <= MAX_REASON_CHARACTERS
    assert "\n" not in str(error)
    assert TOKEN not in str(error)


def esp_response(body: dict[str, str]) -> SimpleNamespace:
    """The parts of a requests.Response that anymail's error message reads."""
    return SimpleNamespace(
        status_code=422, reason="Unprocessable Entity", json=lambda: body, text=json.dumps(body)
    )


@pytest.mark.parametrize(
    "error",
    [
        AnymailRecipientsRefused(status_code=422, response=esp_response(ECHOED_MESSAGE)),
        AnymailAPIError(
            json.dumps(ECHOED_MESSAGE), status_code=422, response=esp_response(ECHOED_MESSAGE)
        ),
    ],
    ids=["recipients-refused", "api-error"],
)
def test_esp_error_body_is_cut(error: Exception) -> None:
    # It should be long to begin with, or the test shows nothing.
    assert len(str(error)) > 4000

    reason = str(classify_email_error(error))

    assert len(reason) <= MAX_REASON_CHARACTERS
    assert "Our news. " * 40 not in reason
    assert TOKEN not in reason


@pytest.mark.django_db
def test_engine_stores_and_logs_short_reasons(
    make_campaign, caplog: pytest.LogCaptureFixture
) -> None:
    campaign = make_campaign(recipients=[{"email": "crash@example.com"}])
    campaign.start()
    error = RuntimeError(f"gateway said:\n{json.dumps(ECHOED_MESSAGE, indent=2)}")
    provider = RecordingProvider(unexpected={"crash@example.com": error})

    with caplog.at_level(logging.WARNING, logger="dispatch.engine"):
        run_campaign(campaign.pk, provider, TEST_ENGINE_SETTINGS)

    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.FAILED
    assert recipient.failure_reason.startswith("unexpected error: RuntimeError: gateway said: {")
    assert recipient.failure_reason.endswith("…")
    attempt = DeliveryAttempt.objects.get(recipient=recipient)
    assert attempt.error == recipient.failure_reason
    failures = [r for r in caplog.records if "delivery error" in r.getMessage()]
    assert len(failures) == 1
    assert recipient.failure_reason in failures[0].getMessage()
    assert "\n" not in failures[0].getMessage()
    # The traceback names where the error came from, with its message shortened too.
    crashes = [r for r in caplog.records if "provider raised an unexpected" in r.getMessage()]
    assert len(crashes) == 1
    crash = crashes[0].getMessage()
    assert "in deliver\n    raise self.unexpected[delivery.email]\n" in crash
    last_line = crash.splitlines()[-1]
    assert last_line.startswith("RuntimeError: gateway said: {")
    assert last_line.endswith("…")
    assert len(last_line) == len("RuntimeError: ") + MAX_REASON_CHARACTERS
    assert "Our news. " * 40 not in caplog.text
    assert TOKEN not in caplog.text
