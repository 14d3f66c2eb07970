"""Status counts kept by triggers: every transition leaves them equal to the rows."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, DeliveryAttempt, Recipient, StatusCountChange
from dispatch import claims
from dispatch.claims import Outcome

pytestmark = pytest.mark.django_db


def counted(campaign: Campaign) -> dict[str, int]:
    """The campaign's counts as the header reads them, without zeros."""
    progress = campaign.progress()
    counts = {
        Recipient.Status.QUEUED: progress.queued,
        Recipient.Status.IN_FLIGHT: progress.in_flight,
        Recipient.Status.SENT: progress.sent,
        Recipient.Status.FAILED: progress.failed,
        Recipient.Status.CANCELLED: progress.cancelled,
        Recipient.Status.SUPPRESSED: progress.suppressed,
    }
    return {status: count for status, count in counts.items() if count}


def actual(campaign: Campaign) -> dict[str, int]:
    """The campaign's counts read from its recipients."""
    return dict(Counter(campaign.recipients.values_list("status", flat=True)))


def outcome(claim: claims.Claim, status: str, transient: bool = False) -> Outcome:
    now = timezone.now()
    return Outcome(
        claim=claim,
        status=status,
        attempt_outcome=(
            DeliveryAttempt.Outcome.SENT
            if status == Recipient.Status.SENT
            else DeliveryAttempt.Outcome.TRANSIENT_ERROR
        ),
        started_at=now,
        finished_at=now,
        error="" if status == Recipient.Status.SENT else "timed out",
        transient=transient,
        retry_at=now + timedelta(minutes=5) if status == Recipient.Status.QUEUED else None,
    )


def make_recipients(campaign: Campaign, count: int) -> None:
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, email=f"r{i}@example.com") for i in range(count)
    )


def test_counts_follow_every_transition(make_campaign):
    campaign = make_campaign()
    make_recipients(campaign, 12)
    assert counted(campaign) == actual(campaign) == {Recipient.Status.QUEUED: 15}

    campaign.start()
    batch = claims.claim_batch(campaign.pk, 8, lease_seconds=60)
    assert counted(campaign) == actual(campaign)

    claims.renew_leases([batch[0].token], lease_seconds=60)
    claims.record_outcomes(
        campaign.pk,
        [outcome(c, Recipient.Status.SENT) for c in batch[:3]]
        + [outcome(c, Recipient.Status.FAILED, transient=True) for c in batch[3:5]]
        + [outcome(c, Recipient.Status.QUEUED, transient=True) for c in batch[5:6]],
    )
    assert counted(campaign) == actual(campaign)

    claims.release_claims(campaign.pk, batch[6:7])
    assert counted(campaign) == actual(campaign)

    campaign.recipients.filter(pk=batch[7].recipient_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    claims.expire_leases()
    assert counted(campaign) == actual(campaign)

    campaign.cancel()
    assert counted(campaign) == actual(campaign)
    assert counted(campaign) == {
        Recipient.Status.SENT: 3,
        Recipient.Status.FAILED: 2,
        Recipient.Status.CANCELLED: 10,
    }


def test_counts_follow_retry_failed(make_campaign):
    campaign = make_campaign()
    campaign.start()
    batch = claims.claim_batch(campaign.pk, 3, lease_seconds=60)
    claims.record_outcomes(
        campaign.pk,
        [outcome(batch[0], Recipient.Status.SENT)]
        + [outcome(c, Recipient.Status.FAILED, transient=True) for c in batch[1:]],
    )
    assert campaign.complete()

    assert campaign.retry_failed() == 2
    assert counted(campaign) == actual(campaign)
    assert counted(campaign) == {Recipient.Status.SENT: 1, Recipient.Status.QUEUED: 2}


def test_counts_follow_deleted_recipients(make_campaign):
    campaign = make_campaign()
    campaign.recipients.filter(email="ada@example.com").delete()

    assert counted(campaign) == actual(campaign) == {Recipient.Status.QUEUED: 2}


def test_lease_renewal_adds_no_change(make_campaign):
    campaign = make_campaign()
    campaign.start()
    batch = claims.claim_batch(campaign.pk, 3, lease_seconds=60)
    rows_before = StatusCountChange.objects.count()

    claims.renew_leases([batch[0].token], lease_seconds=60)

    assert StatusCountChange.objects.count() == rows_before


def test_fold_keeps_sums_and_merges_rows(make_campaign):
    campaign = make_campaign()
    make_recipients(campaign, 20)
    campaign.start()
    for _ in range(4):
        batch = claims.claim_batch(campaign.pk, 5, lease_seconds=60)
        claims.record_outcomes(campaign.pk, [outcome(c, Recipient.Status.SENT) for c in batch])
    before = counted(campaign)

    StatusCountChange.fold()

    assert counted(campaign) == before == actual(campaign)
    rows = Counter(
        StatusCountChange.objects.filter(campaign_id=campaign.pk).values_list("status", flat=True)
    )
    # One row per status left; statuses whose count is zero have none.
    assert rows == {Recipient.Status.QUEUED: 1, Recipient.Status.SENT: 1}


def test_fold_drops_rows_of_deleted_campaigns(make_campaign):
    remaining = make_campaign(name="Kept")
    deleted = make_campaign(name="Deleted")
    deleted_id = deleted.pk
    Campaign.objects.filter(pk=deleted_id).delete()
    # Deleting recipients with their campaign adds changes that sum to zero.
    assert StatusCountChange.objects.filter(campaign_id=deleted_id).exists()

    StatusCountChange.fold()

    assert not StatusCountChange.objects.filter(campaign_id=deleted_id).exists()
    assert counted(remaining) == actual(remaining)


def test_progress_reads_no_recipients(make_campaign):
    campaign = make_campaign()

    with CaptureQueriesContext(connection) as captured:
        campaign.progress()

    [query] = captured.captured_queries
    assert Recipient._meta.db_table not in query["sql"]
