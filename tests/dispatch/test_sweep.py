"""The periodic sweep: expired claims, lost wake-ups, unfinished completions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from dispatch import claims
from dispatch.sweep import SWEEP_LOCK_KEY, sweep

pytestmark = pytest.mark.django_db


def test_sweep_wakes_campaign_with_lost_messages(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()

    result = sweep()

    assert result.woken == [campaign.pk]
    tasks = [job["headers"]["task"] for job in job_queue()]
    assert tasks and set(tasks) == {"dispatch.process_campaign"}


def test_sweep_leaves_campaign_with_live_claims(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()
    claims.claim_batch(campaign.pk, 1, lease_seconds=60)

    result = sweep()

    assert result.woken == []
    assert job_queue() == []


def test_sweep_requeues_expired_claims_and_wakes(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()
    claims.claim_batch(campaign.pk, 3, lease_seconds=60)
    campaign.recipients.update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    result = sweep()

    assert result.expired == 3
    assert set(campaign.recipients.values_list("status", flat=True)) == {Recipient.Status.QUEUED}
    assert result.woken == [campaign.pk]


def test_sweep_completes_finished_campaign(make_campaign):
    campaign = make_campaign()
    campaign.start()
    campaign.recipients.update(status=Recipient.Status.SENT, processed_at=timezone.now())

    result = sweep()

    campaign.refresh_from_db()
    assert result.completed == [campaign.pk]
    assert campaign.status == Campaign.Status.COMPLETED


def test_sweep_ignores_paused_campaign(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()
    campaign.pause("operator")

    result = sweep()

    assert result.woken == []
    assert job_queue() == []


def test_sweep_wakes_campaign_with_due_retries(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()
    ada, grace, alan = campaign.recipients.order_by("pk")
    Recipient.objects.filter(pk=ada.pk).update(
        status=Recipient.Status.SENT, processed_at=timezone.now()
    )
    Recipient.objects.filter(pk__in=[grace.pk, alan.pk]).update(
        attempts=1, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    result = sweep()

    assert result.woken == [campaign.pk]
    tasks = [job["headers"]["task"] for job in job_queue()]
    assert tasks and set(tasks) == {"dispatch.process_campaign"}


def test_sweep_waits_for_future_retries(make_campaign, job_queue):
    campaign = make_campaign()
    campaign.start()
    campaign.recipients.update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    result = sweep()

    assert result.woken == []
    assert result.completed == []


def test_second_sweep_skips_while_one_runs(make_campaign, job_queue, other_session_lock):
    campaign = make_campaign()
    campaign.start()
    other_session_lock(SWEEP_LOCK_KEY)

    result = sweep()

    assert result.ran is False
    assert job_queue() == []
