"""The dispatch job: transitions, failures, idempotency and the advisory lock."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from campaigns.models import Campaign, Recipient
from dispatch.dispatcher import ADVISORY_LOCK_NAMESPACE, dispatch_campaign
from dispatch.providers import DeliveryError, SimulatedProvider

pytestmark = pytest.mark.django_db


class RecordingProvider:
    """Delivers instantly and records who it delivered to; raises for chosen emails."""

    def __init__(self, raise_for: dict[str, Exception] | None = None) -> None:
        self.delivered: list[int] = []
        self.raise_for = raise_for or {}

    def deliver(self, recipient: Recipient) -> str:
        self.delivered.append(recipient.pk)
        if recipient.email in self.raise_for:
            raise self.raise_for[recipient.email]
        return f"recorded-{recipient.pk}"


def statuses(campaign: Campaign) -> dict[str, str]:
    return {r.email or r.phone_number: r.status for r in campaign.recipients.all()}


def test_job_completes_processing_campaign(make_campaign):
    campaign = make_campaign()
    assert campaign.start()
    provider = RecordingProvider()

    dispatch_campaign(campaign.pk, provider)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None
    assert set(statuses(campaign).values()) == {Recipient.Status.SENT}
    assert campaign.recipients.filter(processed_at__isnull=True).count() == 0


def test_job_delivers_in_id_order(make_campaign):
    campaign = make_campaign()
    campaign.start()
    provider = RecordingProvider()

    dispatch_campaign(campaign.pk, provider)

    assert provider.delivered == sorted(campaign.recipients.values_list("id", flat=True))


def test_job_ignores_pending_campaign(make_campaign):
    campaign = make_campaign()
    provider = RecordingProvider()

    dispatch_campaign(campaign.pk, provider)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert provider.delivered == []


def test_job_ignores_unknown_campaign():
    provider = RecordingProvider()

    dispatch_campaign(987654321, provider)

    assert provider.delivered == []


def test_failure_fails_only_that_recipient(make_campaign):
    campaign = make_campaign(
        recipients=[
            {"email": "first@example.com"},
            {"email": "broken@example.com"},
            {"email": "last@example.com"},
        ]
    )
    campaign.start()
    provider = RecordingProvider(raise_for={"broken@example.com": DeliveryError("mailbox full")})

    dispatch_campaign(campaign.pk, provider)

    campaign.refresh_from_db()
    broken = campaign.recipients.get(email="broken@example.com")
    assert broken.status == Recipient.Status.FAILED
    assert broken.failure_reason == "mailbox full"
    assert broken.processed_at is not None
    assert campaign.recipients.filter(status=Recipient.Status.SENT).count() == 2
    assert campaign.status == Campaign.Status.COMPLETED


def test_unexpected_error_fails_recipient_and_continues(make_campaign):
    campaign = make_campaign(
        recipients=[{"email": "crash@example.com"}, {"email": "fine@example.com"}]
    )
    campaign.start()
    provider = RecordingProvider(raise_for={"crash@example.com": RuntimeError("socket closed")})

    dispatch_campaign(campaign.pk, provider)

    crashed = campaign.recipients.get(email="crash@example.com")
    assert crashed.status == Recipient.Status.FAILED
    assert "RuntimeError: socket closed" in crashed.failure_reason
    assert campaign.recipients.get(email="fine@example.com").status == Recipient.Status.SENT


def test_simulated_failing_domain_fails(make_campaign, settings):
    settings.DELIVERY_FAIL_EMAIL_DOMAIN = "fail.example.com"
    campaign = make_campaign(
        recipients=[{"email": "ok@example.com"}, {"email": "nope@fail.example.com"}]
    )
    campaign.start()

    dispatch_campaign(campaign.pk)

    assert statuses(campaign) == {
        "ok@example.com": Recipient.Status.SENT,
        "nope@fail.example.com": Recipient.Status.FAILED,
    }
    failed = campaign.recipients.get(email="nope@fail.example.com")
    assert "fail.example.com" in failed.failure_reason


def test_rerun_after_partial_progress_delivers_only_queued(make_campaign):
    campaign = make_campaign(
        recipients=[
            {"email": "done@example.com"},
            {"email": "gone@example.com"},
            {"email": "waiting@example.com"},
        ]
    )
    campaign.start()
    # A previous run got through two recipients, then its worker died.
    campaign.recipients.get(email="done@example.com").mark_sent()
    campaign.recipients.get(email="gone@example.com").mark_failed("rejected")
    provider = RecordingProvider()

    dispatch_campaign(campaign.pk, provider)

    waiting = campaign.recipients.get(email="waiting@example.com")
    assert provider.delivered == [waiting.pk]
    assert campaign.recipients.get(email="gone@example.com").failure_reason == "rejected"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_rerun_after_completion_changes_nothing(make_campaign):
    campaign = make_campaign()
    campaign.start()
    dispatch_campaign(campaign.pk, RecordingProvider())
    before = list(campaign.recipients.values_list("id", "status", "processed_at"))
    campaign.refresh_from_db()
    completed_at = campaign.completed_at
    provider = RecordingProvider()

    dispatch_campaign(campaign.pk, provider)

    assert provider.delivered == []
    assert list(campaign.recipients.values_list("id", "status", "processed_at")) == before
    campaign.refresh_from_db()
    assert campaign.completed_at == completed_at


def other_session_lock(campaign_id: int) -> psycopg.Connection:
    """Take the campaign's advisory lock from a separate PostgreSQL session."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    other = psycopg.connect(autocommit=True, **params)
    taken = other.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, campaign_id]
    ).fetchone()
    assert taken == (True,)
    return other


def test_job_skips_when_lock_is_held(make_campaign):
    campaign = make_campaign()
    campaign.start()
    other = other_session_lock(campaign.pk)
    provider = RecordingProvider()
    try:
        dispatch_campaign(campaign.pk, provider)
    finally:
        other.close()

    assert provider.delivered == []
    assert set(statuses(campaign).values()) == {Recipient.Status.QUEUED}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING


def lock_is_held(campaign_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = %s AND objid = %s",
            [ADVISORY_LOCK_NAMESPACE, campaign_id],
        )
        return cursor.fetchone()[0] > 0


def test_job_releases_lock_after_run(make_campaign):
    campaign = make_campaign()
    campaign.start()

    dispatch_campaign(campaign.pk, RecordingProvider())

    assert not lock_is_held(campaign.pk)


def test_job_releases_lock_when_loop_raises(make_campaign):
    campaign = make_campaign()
    campaign.start()

    class BrokenRecordingProvider(RecordingProvider):
        def deliver(self, recipient: Recipient) -> str:
            raise KeyboardInterrupt  # not an Exception: escapes the per-recipient handler

    with pytest.raises(KeyboardInterrupt):
        dispatch_campaign(campaign.pk, BrokenRecordingProvider())

    assert not lock_is_held(campaign.pk)


def test_job_logs_start_finish_and_failures(make_campaign, caplog):
    campaign = make_campaign(recipients=[{"email": "x@example.com"}, {"email": "y@example.com"}])
    campaign.start()
    provider = RecordingProvider(raise_for={"y@example.com": DeliveryError("rejected")})
    failing_id = campaign.recipients.get(email="y@example.com").pk

    with caplog.at_level("INFO", logger="dispatch"):
        dispatch_campaign(campaign.pk, provider)

    text = caplog.text
    assert f"campaign {campaign.pk}: dispatch started" in text
    assert f"campaign {campaign.pk} recipient {failing_id}: delivery failed: rejected" in text
    assert "sent=1 failed=1 queued=0" in text


def test_job_logs_lock_contention(make_campaign, caplog):
    campaign = make_campaign()
    campaign.start()
    other = other_session_lock(campaign.pk)
    try:
        with caplog.at_level("INFO", logger="dispatch"):
            dispatch_campaign(campaign.pk, RecordingProvider())
    finally:
        other.close()

    assert "another worker holds the dispatch lock" in caplog.text


def test_simulated_provider_rejects_bad_settings():
    with pytest.raises(ValueError, match="delay range"):
        SimulatedProvider(
            delay_min=2, delay_max=1, failure_rate=0, fail_email_domain="", fail_phone_prefix=""
        )
    with pytest.raises(ValueError, match="failure rate"):
        SimulatedProvider(
            delay_min=0, delay_max=0, failure_rate=1.5, fail_email_domain="", fail_phone_prefix=""
        )
