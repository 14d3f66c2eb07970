"""Claims, outcomes, releases and lease expiry: the engine's recipient transitions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch import claims
from dispatch.claims import Outcome
from tests.factories import MESSAGE_CONTENT, operator_workspace

pytestmark = pytest.mark.django_db


def sent_outcome(claim: claims.Claim) -> Outcome:
    now = timezone.now()
    return Outcome(
        claim=claim,
        status=Recipient.Status.SENT,
        attempt_outcome=DeliveryAttempt.Outcome.SENT,
        started_at=now,
        finished_at=now,
        provider_message_id="id-1",
    )


def test_claim_marks_batch_in_flight(make_campaign):
    campaign = make_campaign()
    campaign.start()

    batch = claims.claim_batch(campaign.pk, 2, lease_seconds=60)

    first_two = list(campaign.recipients.order_by("id").values_list("id", flat=True))[:2]
    assert [c.recipient_id for c in batch] == first_two
    assert len({c.token for c in batch}) == 1
    assert [c.attempt for c in batch] == [1, 1]
    for recipient in campaign.recipients.filter(id__in=first_two):
        assert recipient.status == Recipient.Status.IN_FLIGHT
        assert recipient.claim_token == batch[0].token
        assert recipient.lease_expires_at > timezone.now() + timedelta(seconds=50)


def test_claims_never_overlap(make_campaign):
    campaign = make_campaign()
    campaign.start()

    first = claims.claim_batch(campaign.pk, 2, lease_seconds=60)
    second = claims.claim_batch(campaign.pk, 2, lease_seconds=60)
    third = claims.claim_batch(campaign.pk, 2, lease_seconds=60)

    ids = [c.recipient_id for c in first + second]
    assert len(ids) == len(set(ids)) == 3
    assert third == []


@pytest.mark.parametrize("status", ["pending", "paused", "completed", "cancelled"])
def test_claim_needs_processing_campaign(make_campaign, status):
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status=status)

    assert claims.claim_batch(campaign.pk, 10, lease_seconds=60) == []
    assert not campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).exists()


def test_claim_skips_recipients_not_due(make_campaign):
    campaign = make_campaign()
    campaign.start()
    later = timezone.now() + timedelta(minutes=5)
    campaign.recipients.update(next_attempt_at=later)

    assert claims.claim_batch(campaign.pk, 10, lease_seconds=60) == []


def test_outcome_needs_matching_token(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}])
    campaign.start()
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    stale = claims.Claim(**{**claim.__dict__, "token": uuid.uuid4()})

    changed = claims.record_outcomes(campaign.pk, [sent_outcome(stale)])

    assert changed == []
    assert campaign.recipients.get().status == Recipient.Status.IN_FLIGHT
    # The attempt is recorded all the same: the delivery happened.
    assert DeliveryAttempt.objects.filter(recipient_id=claim.recipient_id).count() == 1


def test_outcome_clears_claim(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}])
    campaign.start()
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)

    [changed] = claims.record_outcomes(campaign.pk, [sent_outcome(claim)])

    recipient = campaign.recipients.get()
    assert changed.status == recipient.status == Recipient.Status.SENT
    assert recipient.claim_token is None
    assert recipient.lease_expires_at is None
    assert recipient.provider_message_id == "id-1"
    assert recipient.processed_at is not None


def test_retry_in_cancelled_campaign_is_cancelled(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}])
    campaign.start()
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    campaign.cancel()
    now = timezone.now()
    retry = Outcome(
        claim=claim,
        status=Recipient.Status.QUEUED,
        attempt_outcome=DeliveryAttempt.Outcome.TRANSIENT_ERROR,
        started_at=now,
        finished_at=now,
        error="timed out",
        transient=True,
        retry_at=now,
    )

    claims.record_outcomes(campaign.pk, [retry])

    assert campaign.recipients.get().status == Recipient.Status.CANCELLED


def test_release_returns_unstarted_claims(make_campaign):
    campaign = make_campaign()
    campaign.start()
    batch = claims.claim_batch(campaign.pk, 3, lease_seconds=60)
    campaign.pause("test")

    released = claims.release_claims(campaign.pk, batch)

    assert len(released) == 3
    for recipient in campaign.recipients.all():
        assert recipient.status == Recipient.Status.QUEUED
        assert recipient.attempts == 0
        assert recipient.claim_token is None


def test_release_in_cancelled_campaign_cancels(make_campaign):
    campaign = make_campaign()
    campaign.start()
    batch = claims.claim_batch(campaign.pk, 3, lease_seconds=60)
    campaign.cancel()

    claims.release_claims(campaign.pk, batch)

    statuses = set(campaign.recipients.values_list("status", flat=True))
    assert statuses == {Recipient.Status.CANCELLED}


def test_renew_extends_lease(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}])
    campaign.start()
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=1)

    assert claims.renew_leases([claim.token], lease_seconds=600) == 1

    lease = campaign.recipients.get().lease_expires_at
    assert lease > timezone.now() + timedelta(seconds=500)


def test_expired_lease_returns_to_queue(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}, {"email": "b@example.com"}])
    campaign.start()
    [dead, alive] = claims.claim_batch(campaign.pk, 2, lease_seconds=60)
    campaign.recipients.filter(pk=dead.recipient_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    expired = claims.expire_leases()

    assert [r.pk for r in expired] == [dead.recipient_id]
    assert campaign.recipients.get(pk=dead.recipient_id).status == Recipient.Status.QUEUED
    assert campaign.recipients.get(pk=alive.recipient_id).status == Recipient.Status.IN_FLIGHT
    attempt = DeliveryAttempt.objects.get(recipient_id=dead.recipient_id)
    assert attempt.outcome == DeliveryAttempt.Outcome.LEASE_EXPIRED
    assert attempt.number == 1


def test_expired_lease_in_cancelled_campaign_cancels(make_campaign):
    campaign = make_campaign(recipients=[{"email": "a@example.com"}])
    campaign.start()
    claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    campaign.cancel()
    campaign.recipients.update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    claims.expire_leases()

    assert campaign.recipients.get().status == Recipient.Status.CANCELLED


def plan_nodes(plan: dict) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


def test_claim_does_not_scan_processed_recipients():
    # Statistics taken while every recipient was queued, as when a large
    # campaign has just started, make a scan of the primary key in id order
    # look cheap. Such a scan reads every processed recipient on each claim.
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Large", **MESSAGE_CONTENT
    )
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, email=f"r{i}@example.com") for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {claims.RECIPIENTS}")
    campaign.start()
    for _ in range(10):
        batch = claims.claim_batch(campaign.pk, 200, lease_seconds=60)
        claims.record_outcomes(campaign.pk, [sent_outcome(claim) for claim in batch])

    with CaptureQueriesContext(connection) as captured:
        batch = claims.claim_batch(campaign.pk, 200, lease_seconds=60)
    [claim_sql] = [q["sql"] for q in captured.captured_queries if "SKIP LOCKED" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {claim_sql}")
        [[[explained]]] = cursor.fetchall()

    assert len(batch) == 200
    removed = sum(node.get("Rows Removed by Filter", 0) for node in plan_nodes(explained["Plan"]))
    assert removed < 200, f"the claim read {removed} recipients it could not claim"


def test_next_attempt_delay_follows_queue(make_campaign):
    campaign = make_campaign()
    campaign.start()
    ada, grace, alan = campaign.recipients.order_by("pk")

    # A recipient never tried is due at once.
    due_in = claims.seconds_until_next_attempt(campaign.pk)
    assert due_in is not None
    assert due_in <= 0

    # With only retries left, the earliest retry decides.
    Recipient.objects.filter(pk=ada.pk).update(
        status=Recipient.Status.SENT, processed_at=timezone.now()
    )
    Recipient.objects.filter(pk=grace.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    Recipient.objects.filter(pk=alan.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=90)
    )
    delay = claims.seconds_until_next_attempt(campaign.pk)
    assert delay is not None
    assert 20 < delay <= 30

    # With nothing queued, there is no next attempt.
    campaign.recipients.filter(pk__in=[grace.pk, alan.pk]).update(
        status=Recipient.Status.SENT, processed_at=timezone.now(), next_attempt_at=None
    )
    assert claims.seconds_until_next_attempt(campaign.pk) is None
