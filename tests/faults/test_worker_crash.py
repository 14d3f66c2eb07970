"""A worker killed in the middle of a dispatch: the sweep requeues its claims, another finishes.

Claims are taken before delivery, so a message that the dead worker delivered
but had not yet recorded is delivered again. Only the dead worker's claims
may be delivered twice; recipients already recorded as sent never are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from tests.faults.cluster import wait_for
from tests.faults.conftest import campaign_status, enqueue_start, needs_redis_server
from tests.faults.providers import DeliveryRecords

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), needs_redis_server]

RECIPIENTS = 10_000
# The victim is killed once this many recipients are final, about a third of the way.
KILL_AFTER_PROCESSED = 3_000
START_TIMEOUT_SECONDS = 40.0
# A guard against a hang, far above the usual time. The surviving worker
# delivers the rest alone, and the sweep waits for a free task slot.
FINISH_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class KillSnapshot:
    """The campaign's state right after the victim died."""

    sent_ids: frozenset[int]
    # Recipient id to its attempt number, which identifies the claim.
    in_flight: dict[int, int]
    lease_expired: int
    counts: dict[int, int]


def take_snapshot(campaign: Campaign, records: DeliveryRecords) -> KillSnapshot:
    """Read the database, then the delivery counts.

    In that order, a recipient that the database shows as sent was delivered
    before the counts are read, so its count cannot grow legitimately later.
    """
    rows = list(campaign.recipients.values_list("id", "status", "attempts"))
    lease_expired = len(lease_expired_ids(campaign))
    return KillSnapshot(
        sent_ids=frozenset(pk for pk, status, _ in rows if status == Recipient.Status.SENT),
        in_flight={
            pk: attempts for pk, status, attempts in rows if status == Recipient.Status.IN_FLIGHT
        },
        lease_expired=lease_expired,
        counts=records.counts(campaign.pk),
    )


def lease_expired_ids(campaign: Campaign) -> list[int]:
    return list(
        DeliveryAttempt.objects.filter(
            campaign=campaign, outcome=DeliveryAttempt.Outcome.LEASE_EXPIRED
        ).values_list("recipient_id", flat=True)
    )


def test_killed_worker_claims_are_redelivered(
    create_campaign, private_redis, dispatch_cluster, delivery_records
):
    cluster = dispatch_cluster(
        workers=2,
        environment={"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url},
    )
    campaign = create_campaign(RECIPIENTS)
    cluster.wait_until_ready()
    assert campaign.start()
    enqueue_start(campaign.pk, private_redis.url)

    wait_for(
        lambda: campaign.progress().processed >= KILL_AFTER_PROCESSED,
        START_TIMEOUT_SECONDS,
        lambda: f"{KILL_AFTER_PROCESSED} recipients were not processed: {campaign.progress()}",
        cluster,
    )
    # The worker that has delivered more so far is certainly running loops.
    by_worker = delivery_records.by_worker(campaign.pk)
    victim = cluster.worker_named(max(by_worker, key=lambda name: by_worker[name]))
    [survivor] = [worker for worker in cluster.workers if worker is not victim]
    victim.kill()
    snapshot = take_snapshot(campaign, delivery_records)

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the kill: {campaign.progress()}",
        cluster,
    )

    # It should deliver every recipient and record each as sent.
    statuses = Counter(campaign.recipients.values_list("status", flat=True))
    assert statuses == {Recipient.Status.SENT: RECIPIENTS}
    counts = delivery_records.counts(campaign.pk)
    assert set(counts) == set(campaign.recipients.values_list("id", flat=True))

    # It should never deliver again a recipient that was sent before the kill.
    redelivered_sent = {pk for pk in snapshot.sent_ids if counts[pk] != snapshot.counts.get(pk)}
    assert redelivered_sent == set()

    # The victim's claims are the rows in flight at the kill whose attempt the
    # survivor did not deliver. The survivor renews its leases and releases no
    # claim while the campaign is processing, so none of its claims expire.
    deliverers = delivery_records.deliverers(campaign.pk)
    victim_claims = {
        pk
        for pk, attempt in snapshot.in_flight.items()
        if deliverers.get((pk, attempt)) != survivor.name
    }
    delivered_by_victim = {
        pk
        for pk, attempt in snapshot.in_flight.items()
        if deliverers.get((pk, attempt)) == victim.name
    }
    assert snapshot.lease_expired == 0
    assert victim_claims, "the victim held no claims when it was killed"

    # It should expire exactly the victim's claims, each once.
    assert sorted(lease_expired_ids(campaign)) == sorted(victim_claims)

    # It should deliver twice only what the victim delivered but did not record.
    duplicated = {pk for pk, count in counts.items() if count > 1}
    assert duplicated <= delivered_by_victim
    assert max(counts.values()) <= 2
    extra_deliveries = sum(count - 1 for count in counts.values())
    assert extra_deliveries <= len(victim_claims)
    assert extra_deliveries <= len(snapshot.in_flight)
