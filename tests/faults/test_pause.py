"""Pause in the middle of a dispatch: only claims already in flight are delivered, then resume.

A claim reads the campaign row FOR SHARE, so once the pause's UPDATE is
committed no new claim can be taken, and the recipients in flight at that
moment are the only ones that may still be delivered.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.db import connection, transaction

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch.tasks import dispatch_campaign_later, wake_campaign_later
from tests.faults.cluster import wait_for
from tests.faults.conftest import campaign_status

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 2_000
PAUSE_AFTER_PROCESSED = 600
START_TIMEOUT_SECONDS = 40.0
SETTLE_TIMEOUT_SECONDS = 20.0
FINISH_TIMEOUT_SECONDS = 90.0


def database_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        row = cursor.fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def attempts_per_recipient(campaign: Campaign) -> Counter[int]:
    return Counter(
        DeliveryAttempt.objects.filter(campaign=campaign).values_list("recipient_id", flat=True)
    )


def test_pause_stops_new_deliveries_until_resume(
    create_campaign, dispatch_cluster, delivery_records
):
    cluster = dispatch_cluster(workers=2)
    campaign = create_campaign(RECIPIENTS)
    cluster.wait_until_ready()
    assert campaign.start()
    dispatch_campaign_later(campaign.pk)

    wait_for(
        lambda: campaign.progress().processed >= PAUSE_AFTER_PROCESSED,
        START_TIMEOUT_SECONDS,
        lambda: f"{PAUSE_AFTER_PROCESSED} recipients were not processed: {campaign.progress()}",
        cluster,
    )
    # Read the in-flight rows in the pause's own transaction. Its row lock
    # holds back new claims until the commit, so the set can only shrink
    # before then and contains every claim that exists at the commit.
    with transaction.atomic():
        assert campaign.pause("fault test")
        in_flight_at_pause = set(
            campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).values_list(
                "id", flat=True
            )
        )
    paused_at = database_now()

    # Wait until every worker loop has ended and recorded the deliveries that
    # were under way. A loop started later finds the campaign paused and
    # claims nothing.
    def settled() -> bool:
        started = cluster.count_in_logs(f"campaign {campaign.pk}: worker loop started")
        finished = cluster.count_in_logs(f"campaign {campaign.pk}: worker loop finished")
        in_flight = campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).exists()
        return started == finished and not in_flight

    wait_for(
        settled,
        SETTLE_TIMEOUT_SECONDS,
        lambda: f"worker loops were still running after the pause: {campaign.progress()}",
        cluster,
    )
    progress_while_paused = campaign.progress()
    attempts = attempts_per_recipient(campaign)
    counts = delivery_records.counts(campaign.pk)
    started_after_pause = set(
        DeliveryAttempt.objects.filter(campaign=campaign, started_at__gt=paused_at).values_list(
            "recipient_id", flat=True
        )
    )

    # The pause should have come mid-way, with claims in flight and recipients left.
    assert in_flight_at_pause
    assert progress_while_paused.queued > 0
    assert campaign_status(campaign) == Campaign.Status.PAUSED

    # Only recipients in flight at the pause should have started a delivery after it.
    assert started_after_pause <= in_flight_at_pause

    # Every delivery should be recorded as an attempt, and every attempt as sent.
    assert counts == dict(attempts)
    outcomes = set(
        DeliveryAttempt.objects.filter(campaign=campaign).values_list("outcome", flat=True)
    )
    assert outcomes == {DeliveryAttempt.Outcome.SENT}
    assert len(attempts) == progress_while_paused.sent

    assert campaign.resume()
    wake_campaign_later(campaign.pk)

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the resume: {campaign.progress()}",
        cluster,
    )

    # It should deliver every recipient exactly once across the pause.
    statuses = Counter(campaign.recipients.values_list("status", flat=True))
    assert statuses == {Recipient.Status.SENT: RECIPIENTS}
    final_counts = delivery_records.counts(campaign.pk)
    assert set(final_counts) == set(campaign.recipients.values_list("id", flat=True))
    assert {pk: count for pk, count in final_counts.items() if count != 1} == {}
