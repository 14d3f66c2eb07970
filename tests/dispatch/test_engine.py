"""The dispatch engine's worker loop: claims, outcomes, retries, completion."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from audit.models import AuditEvent
from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch import shutdown
from dispatch.claims import claim_batch
from dispatch.engine import retry_delay, run_campaign
from dispatch.sweep import sweep
from tests.dispatch.fakes import TEST_ENGINE_SETTINGS, RecordingProvider, engine_settings

pytestmark = pytest.mark.django_db

FAST = TEST_ENGINE_SETTINGS
# Seconds that a test waits for a worker loop in a thread to reach a state.
THREAD_TIMEOUT_SECONDS = 30.0


def statuses(campaign: Campaign) -> dict[str, str]:
    return {r.email or r.phone_number: r.status for r in campaign.recipients.all()}


def test_loop_completes_processing_campaign(make_campaign):
    campaign = make_campaign()
    assert campaign.start()
    provider = RecordingProvider()

    stats = run_campaign(campaign.pk, provider, FAST)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None
    assert set(statuses(campaign).values()) == {Recipient.Status.SENT}
    assert stats.sent == 3
    assert sorted(provider.recipient_ids) == sorted(
        campaign.recipients.values_list("id", flat=True)
    )


def test_loop_records_one_attempt_per_delivery(make_campaign):
    campaign = make_campaign()
    campaign.start()

    run_campaign(campaign.pk, RecordingProvider(), FAST)

    for recipient in campaign.recipients.all():
        attempts = list(recipient.delivery_attempts.all())
        assert [a.number for a in attempts] == [1]
        assert attempts[0].outcome == DeliveryAttempt.Outcome.SENT
        assert attempts[0].provider_message_id == f"recorded-{recipient.pk}-1"
        assert attempts[0].finished_at >= attempts[0].started_at
        assert recipient.provider_message_id == attempts[0].provider_message_id
        assert recipient.claim_token is None


def test_loop_passes_stable_idempotency_key(make_campaign):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"})

    run_campaign(campaign.pk, provider, FAST)

    recipient = campaign.recipients.get()
    assert [d.attempt for d in provider.deliveries] == [1, 2]
    assert {d.idempotency_key for d in provider.deliveries} == {recipient.idempotency_key}


def test_loop_ignores_pending_campaign(make_campaign):
    campaign = make_campaign()
    provider = RecordingProvider()

    run_campaign(campaign.pk, provider, FAST)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert provider.deliveries == []


def test_loop_ignores_unknown_campaign():
    provider = RecordingProvider()

    run_campaign(987654321, provider, FAST)

    assert provider.deliveries == []


def test_permanent_failure_fails_only_that_recipient(make_campaign):
    campaign = make_campaign(
        recipients=[
            {"email": "first@example.com"},
            {"email": "broken@example.com"},
            {"email": "last@example.com"},
        ]
    )
    campaign.start()
    provider = RecordingProvider(permanent={"broken@example.com": "mailbox full"})

    run_campaign(campaign.pk, provider, FAST)

    campaign.refresh_from_db()
    broken = campaign.recipients.get(email="broken@example.com")
    assert broken.status == Recipient.Status.FAILED
    assert broken.failure_reason == "mailbox full"
    assert broken.last_error_transient is False
    assert broken.processed_at is not None
    assert provider.recipient_ids.count(broken.pk) == 1
    assert campaign.recipients.filter(status=Recipient.Status.SENT).count() == 2
    assert campaign.status == Campaign.Status.COMPLETED


def test_transient_failure_is_retried(make_campaign):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"}, transient_times=2)

    run_campaign(campaign.pk, provider, FAST)

    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.SENT
    assert recipient.attempts == 3
    outcomes = list(recipient.delivery_attempts.values_list("number", "outcome", "error"))
    assert outcomes == [
        (1, "transient_error", "timed out"),
        (2, "transient_error", "timed out"),
        (3, "sent", ""),
    ]


def test_transient_failure_stops_at_max_attempts(make_campaign):
    campaign = make_campaign(recipients=[{"email": "down@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"down@example.com": "server error"}, transient_times=99)

    run_campaign(campaign.pk, provider, FAST)

    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.FAILED
    assert recipient.last_error_transient is True
    assert recipient.failure_reason == "server error"
    assert len(provider.deliveries) == FAST.max_attempts
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_retry_waits_for_backoff(make_campaign, job_queue):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "rate limited"})
    slow_retry = engine_settings(retry_base_seconds=600, retry_max_seconds=600)

    run_campaign(campaign.pk, provider, slow_retry)

    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.QUEUED
    assert recipient.next_attempt_at is not None
    assert len(provider.deliveries) == 1
    # Not due yet: nothing can claim it, and the campaign stays processing.
    assert claim_batch(campaign.pk, 10, 60) == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    # The loop should leave the retry to the sweep rather than enqueue a delayed wake-up.
    assert job_queue() == []
    assert sweep().woken == []

    # Once the retry is due, the sweep should wake the campaign and a loop deliver it.
    campaign.recipients.update(next_attempt_at=recipient.next_attempt_at - timedelta(seconds=601))
    assert sweep().woken == [campaign.pk]
    assert {job["headers"]["task"] for job in job_queue()} == {"dispatch.process_campaign"}
    run_campaign(campaign.pk, provider, slow_retry)
    assert campaign.recipients.get().status == Recipient.Status.SENT
    assert [d.attempt for d in provider.deliveries] == [1, 2]


def test_loop_waits_for_near_retry(make_campaign, job_queue):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"})
    # Retries come 0.25 to 0.5 s after the failure, well within the wait.
    near_retry = engine_settings(
        retry_base_seconds=0.5, retry_max_seconds=0.5, retry_wait_seconds=5
    )

    stats = run_campaign(campaign.pk, provider, near_retry)

    # The one loop should have waited and delivered the retry itself, with no wake-up.
    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.SENT
    assert stats.retried == 1
    assert stats.sent == 1
    assert job_queue() == []
    first, second = recipient.delivery_attempts.order_by("number")
    assert second.started_at - first.finished_at >= timedelta(seconds=0.25)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_loop_leaves_retry_beyond_wait(make_campaign, job_queue):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"})
    # Retries come 1.5 to 3 s after the failure, beyond the 1 s wait.
    far_retry = engine_settings(retry_base_seconds=3, retry_max_seconds=3, retry_wait_seconds=1)

    run_campaign(campaign.pk, provider, far_retry)

    # The loop should have exited before the retry and left it queued for the sweep.
    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.QUEUED
    assert len(provider.deliveries) == 1
    assert job_queue() == []


@pytest.mark.django_db(transaction=True)
def test_waiting_loop_stops_on_pause(make_campaign, caplog):
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"})
    # Retries come 10 to 20 s after the failure, within the 60 s wait.
    long_wait = engine_settings(retry_base_seconds=20, retry_max_seconds=20, retry_wait_seconds=60)

    def run_loop() -> None:
        try:
            run_campaign(campaign.pk, provider, long_wait)
        finally:
            connection.close()

    def loop_is_waiting() -> bool:
        return any("for the next retry" in record.getMessage() for record in caplog.records)

    loop = threading.Thread(target=run_loop)
    with caplog.at_level(logging.INFO, logger="dispatch.engine"):
        loop.start()
        deadline = time.monotonic() + THREAD_TIMEOUT_SECONDS
        while not loop_is_waiting():
            assert time.monotonic() < deadline, "the loop did not start waiting for the retry"
            time.sleep(0.05)
        assert campaign.pause("operator")
    loop.join(timeout=5)

    # The loop should stop waiting within 5 s of the pause, before the retry is due.
    assert not loop.is_alive()
    assert len(provider.deliveries) == 1
    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.QUEUED


def test_unexpected_error_fails_recipient_and_continues(make_campaign):
    campaign = make_campaign(
        recipients=[{"email": "crash@example.com"}, {"email": "fine@example.com"}]
    )
    campaign.start()
    provider = RecordingProvider(unexpected={"crash@example.com": RuntimeError("bug")})

    run_campaign(campaign.pk, provider, FAST)

    crashed = campaign.recipients.get(email="crash@example.com")
    assert crashed.status == Recipient.Status.FAILED
    assert "RuntimeError: bug" in crashed.failure_reason
    assert campaign.recipients.get(email="fine@example.com").status == Recipient.Status.SENT


def test_rerun_after_completion_changes_nothing(make_campaign):
    campaign = make_campaign()
    campaign.start()
    run_campaign(campaign.pk, RecordingProvider(), FAST)
    before = list(campaign.recipients.values_list("id", "status", "processed_at"))
    provider = RecordingProvider()

    run_campaign(campaign.pk, provider, FAST)

    assert provider.deliveries == []
    assert list(campaign.recipients.values_list("id", "status", "processed_at")) == before


def test_rerun_delivers_only_queued(make_campaign):
    campaign = make_campaign(
        recipients=[{"email": "done@example.com"}, {"email": "waiting@example.com"}]
    )
    campaign.start()
    done = campaign.recipients.get(email="done@example.com")
    Recipient.objects.filter(pk=done.pk).update(status=Recipient.Status.SENT)
    provider = RecordingProvider()

    run_campaign(campaign.pk, provider, FAST)

    assert provider.recipient_ids == [campaign.recipients.get(email="waiting@example.com").pk]


def test_paused_campaign_claims_nothing(make_campaign):
    campaign = make_campaign()
    campaign.start()
    campaign.pause("test")
    provider = RecordingProvider()

    run_campaign(campaign.pk, provider, FAST)

    assert provider.deliveries == []
    assert set(statuses(campaign).values()) == {Recipient.Status.QUEUED}


def test_cancelled_campaign_cancels_queued(make_campaign):
    campaign = make_campaign()
    campaign.start()

    assert campaign.cancel()

    assert set(statuses(campaign).values()) == {Recipient.Status.CANCELLED}
    assert claim_batch(campaign.pk, 10, 60) == []


@pytest.mark.parametrize(
    ("attempt", "expected_low", "expected_high"),
    [(1, 2.5, 7.5), (2, 5, 15), (3, 10, 30), (10, 30, 60)],
)
def test_retry_delay_grows_with_jitter(attempt, expected_low, expected_high):
    import random

    rng = random.Random(1)
    delays = [retry_delay(attempt, base=5, cap=60, rng=rng) for _ in range(200)]

    assert min(delays) >= expected_low
    assert max(delays) <= expected_high
    assert len(set(delays)) > 100


def failing_campaign(make_campaign, count: int):
    recipients = [{"email": f"r{n}@example.com"} for n in range(count)]
    campaign = make_campaign(recipients=recipients)
    campaign.start()
    provider = RecordingProvider(permanent={r["email"]: "rejected" for r in recipients})
    return campaign, provider


def test_auto_pause_after_failure_count(make_campaign, settings):
    settings.AUTO_PAUSE_FAILURE_COUNT = 2
    campaign, provider = failing_campaign(make_campaign, 6)
    one_at_a_time = engine_settings(concurrency=1, batch_size=1, flush_size=1)

    run_campaign(campaign.pk, provider, one_at_a_time)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "2 failures since the last resume" in campaign.pause_reason
    assert campaign.recipients.filter(status=Recipient.Status.QUEUED).exists()
    assert not campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).exists()


def test_auto_pause_records_system_event(make_campaign, settings):
    settings.AUTO_PAUSE_FAILURE_COUNT = 2
    campaign, provider = failing_campaign(make_campaign, 6)
    one_at_a_time = engine_settings(concurrency=1, batch_size=1, flush_size=1)

    run_campaign(campaign.pk, provider, one_at_a_time)

    campaign.refresh_from_db()
    event = AuditEvent.objects.get()
    assert event.campaign == campaign
    assert event.action == AuditEvent.Action.PAUSED
    assert event.actor is None
    assert event.actor_display == "system"
    assert event.detail == campaign.pause_reason
    assert "2 failures since the last resume" in event.detail


def test_auto_pause_after_failure_share(make_campaign, settings):
    settings.AUTO_PAUSE_FAILURE_RATE = 0.5
    settings.AUTO_PAUSE_MIN_PROCESSED = 4
    campaign, provider = failing_campaign(make_campaign, 8)
    one_at_a_time = engine_settings(concurrency=1, batch_size=1, flush_size=1)

    run_campaign(campaign.pk, provider, one_at_a_time)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "100% of 4 recipients failed" in campaign.pause_reason


def test_resume_resets_failure_count(make_campaign, settings):
    settings.AUTO_PAUSE_FAILURE_COUNT = 2
    campaign, provider = failing_campaign(make_campaign, 3)
    one_at_a_time = engine_settings(concurrency=1, batch_size=1, flush_size=1)
    run_campaign(campaign.pk, provider, one_at_a_time)
    campaign.refresh_from_db()
    assert campaign.failed_since_resume == 2

    assert campaign.resume()

    assert campaign.failed_since_resume == 0
    assert campaign.pause_reason == ""


def test_loop_respects_rate_limit(make_campaign, settings, redis_client):
    import time

    settings.DELIVERY_RATE_LIMIT_PER_SECOND = 20
    settings.DELIVERY_RATE_LIMIT_BURST = 1
    campaign = make_campaign(recipients=[{"email": f"r{n}@example.com"} for n in range(8)])
    campaign.start()
    provider = RecordingProvider()
    for key in redis_client.scan_iter(f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:ratelimit:*"):
        redis_client.delete(key)

    started = time.monotonic()
    run_campaign(campaign.pk, provider, FAST)
    elapsed = time.monotonic() - started

    # 8 messages at 20/s with a bucket of 1 cannot take less than 7 / 20 s.
    assert elapsed >= 7 / 20
    assert len(provider.deliveries) == 8


class BlockingLimiter:
    """A rate limiter whose acquire() blocks until the test grants the token.

    It replaces a Redis limiter that sleeps inside acquire() until the
    next token is due.
    """

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.granted = threading.Event()

    def acquire(self, tokens: int = 1, timeout: float | None = None) -> None:
        self.waiting.set()
        assert self.granted.wait(THREAD_TIMEOUT_SECONDS), "the test never granted the token"


@pytest.mark.django_db(transaction=True)
def test_pause_during_rate_limit_wait_starts_nothing(make_campaign, monkeypatch, caplog):
    campaign = make_campaign(recipients=[{"email": "waiting@example.com"}])
    campaign.start()
    provider = RecordingProvider()
    limiter = BlockingLimiter()
    monkeypatch.setattr("dispatch.engine.limiter_for", lambda *args: limiter)

    def run_loop() -> None:
        try:
            run_campaign(campaign.pk, provider, FAST)
        finally:
            connection.close()

    def loop_saw_pause() -> bool:
        return any("this worker stops claiming" in r.getMessage() for r in caplog.records)

    loop = threading.Thread(target=run_loop)
    with caplog.at_level(logging.INFO, logger="dispatch.engine"):
        loop.start()
        assert limiter.waiting.wait(THREAD_TIMEOUT_SECONDS), "no delivery asked for a token"
        assert campaign.pause("operator")
        deadline = time.monotonic() + THREAD_TIMEOUT_SECONDS
        while not loop_saw_pause():
            assert time.monotonic() < deadline, "the loop did not notice the pause"
            time.sleep(0.05)
        # The token arrives after the pause, as it does when acquire() sleeps
        # through the pause.
        limiter.granted.set()
    loop.join(timeout=THREAD_TIMEOUT_SECONDS)

    assert not loop.is_alive()
    assert provider.deliveries == []
    recipient = campaign.recipients.get()
    assert recipient.status == Recipient.Status.QUEUED
    assert recipient.claim_token is None
    assert recipient.delivery_attempts.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 0),
        ("concurrency", -1),
        ("batch_size", 0),
        ("batch_size", -3),
        ("flush_size", 0),
        ("max_attempts", 0),
        ("lease_seconds", 0),
        ("flush_interval", 0),
        ("retry_base_seconds", -1),
        ("retry_wait_seconds", -1),
    ],
)
def test_engine_settings_reject_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"invalid {field} {value}"):
        engine_settings(**{field: value})


class GatedProvider(RecordingProvider):
    """Holds the first delivery until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.first_started = threading.Event()
        self.gate = threading.Event()

    def deliver(self, delivery):
        if not self.first_started.is_set():
            self.first_started.set()
            assert self.gate.wait(THREAD_TIMEOUT_SECONDS), "the test never opened the gate"
        return super().deliver(delivery)


@pytest.fixture
def worker_shutdown():
    """Clear the process's shutdown request after the test."""
    yield shutdown.request_stop
    shutdown.STOPPING.clear()


@pytest.mark.django_db(transaction=True)
def test_worker_shutdown_returns_unstarted_claims(make_campaign, worker_shutdown, caplog):
    campaign = make_campaign(recipients=[{"email": f"reader{n}@example.com"} for n in range(5)])
    assert campaign.start()
    provider = GatedProvider()
    one_at_a_time = engine_settings(concurrency=1, batch_size=5)

    def run_loop() -> None:
        try:
            run_campaign(campaign.pk, provider, one_at_a_time)
        finally:
            connection.close()

    loop = threading.Thread(target=run_loop)
    with caplog.at_level(logging.INFO, logger="dispatch.engine"):
        loop.start()
        assert provider.first_started.wait(THREAD_TIMEOUT_SECONDS), "nothing was delivered"
        worker_shutdown()
        provider.gate.set()
        loop.join(timeout=THREAD_TIMEOUT_SECONDS)

    # The delivery in flight finished; the other four went back to the queue.
    assert not loop.is_alive()
    assert len(provider.deliveries) == 1
    counts = {status: 0 for status in ("sent", "queued")}
    for recipient in campaign.recipients.all():
        counts[recipient.status] += 1
        if recipient.status == Recipient.Status.QUEUED:
            assert recipient.claim_token is None
    assert counts == {"sent": 1, "queued": 4}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert any("the worker is shutting down" in r.getMessage() for r in caplog.records)

    # Another loop, after the restart, delivers the rest once each.
    shutdown.STOPPING.clear()
    run_campaign(campaign.pk, provider, one_at_a_time)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert sorted(provider.recipient_ids) == sorted(
        campaign.recipients.values_list("pk", flat=True)
    )


def test_celery_shutdown_signal_stops_loops(worker_shutdown):
    from celery.signals import worker_shutting_down

    import config.celery  # noqa: F401 (connects the receiver)

    worker_shutting_down.send(sender="worker@test", sig="SIGTERM", how="Warm", exitcode=0)

    assert shutdown.stop_requested()
