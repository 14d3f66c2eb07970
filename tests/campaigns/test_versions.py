"""Versions that keep a page's rows and header from going backwards.

A recipient's version goes up by one with every UPDATE of its row, whichever
path makes it. A header's version is the position in commit order of the
read that `with_progress()` made: a later read never gets a smaller one.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, DeliveryAttempt, Progress, Recipient
from dispatch import claims
from dispatch.claims import Claim, Outcome
from tests.outcomes import set_outcome

MakeCampaign = Callable[..., Campaign]


def versions(campaign: Campaign) -> list[int]:
    """The versions of the campaign's recipients, in id order."""
    return list(campaign.recipients.order_by("id").values_list("version", flat=True))


def statuses(campaign: Campaign) -> list[str]:
    return list(campaign.recipients.order_by("id").values_list("status", flat=True))


def outcome(claim: Claim, status: str, transient: bool = False) -> Outcome:
    """An outcome as the engine records it: sent, failed, or queued for a retry."""
    now = timezone.now()
    attempt_outcomes: dict[str, str] = {
        Recipient.Status.SENT: DeliveryAttempt.Outcome.SENT,
        Recipient.Status.FAILED: DeliveryAttempt.Outcome.PERMANENT_ERROR,
        Recipient.Status.QUEUED: DeliveryAttempt.Outcome.TRANSIENT_ERROR,
    }
    return Outcome(
        claim=claim,
        status=status,
        attempt_outcome=attempt_outcomes[status],
        started_at=now,
        finished_at=now,
        error="" if status == Recipient.Status.SENT else "rejected",
        transient=transient,
        retry_at=now if status == Recipient.Status.QUEUED else None,
    )


def processing(make_campaign: MakeCampaign) -> Campaign:
    """A processing campaign with three queued recipients, all at version 0."""
    campaign = make_campaign()
    assert campaign.start()
    assert versions(campaign) == [0, 0, 0]
    return campaign


# Recipient.version on each path that changes a row


@pytest.mark.django_db
def test_claim_raises_version_once(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)

    claims.claim_batch(campaign.pk, 2, lease_seconds=60)

    # The claim raises it itself; the trigger must not add a second step.
    assert versions(campaign) == [1, 1, 0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "transient"),
    [("sent", False), ("failed", False), ("queued", True)],
    ids=["sent", "failed", "retry"],
)
def test_outcome_raises_version(make_campaign: MakeCampaign, status: str, transient: bool) -> None:
    campaign = processing(make_campaign)
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)

    [changed] = claims.record_outcomes(campaign.pk, [outcome(claim, status, transient)])

    assert versions(campaign) == [2, 0, 0]
    # The row that the engine announces carries the new version.
    assert changed.version == 2
    assert statuses(campaign)[0] == status


@pytest.mark.django_db
def test_outcome_with_stale_token_keeps_version(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    stale = dataclasses.replace(claim, token=uuid.uuid4())

    assert claims.record_outcomes(campaign.pk, [outcome(stale, Recipient.Status.SENT)]) == []

    assert versions(campaign) == [1, 0, 0]


@pytest.mark.django_db
def test_retry_in_cancelled_campaign_raises_version_twice(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    assert campaign.cancel()

    claims.record_outcomes(campaign.pk, [outcome(claim, Recipient.Status.QUEUED, True)])

    # The retry is recorded, then cancelled by a second statement: two changes.
    assert statuses(campaign) == ["cancelled"] * 3
    assert versions(campaign) == [3, 1, 1]


@pytest.mark.django_db
def test_release_raises_version(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    batch = claims.claim_batch(campaign.pk, 2, lease_seconds=60)

    changed = claims.release_claims(campaign.pk, batch)

    assert versions(campaign) == [2, 2, 0]
    assert [r.version for r in changed] == [2, 2]


@pytest.mark.django_db
def test_lease_expiry_raises_version(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    # That UPDATE, like any other, raised the version too.
    assert versions(campaign) == [2, 0, 0]

    [expired] = claims.expire_leases()

    assert versions(campaign) == [3, 0, 0]
    assert expired.version == 3


@pytest.mark.django_db
def test_lease_renewal_raises_version(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)

    assert claims.renew_leases([claim.token], lease_seconds=60) == 1

    assert versions(campaign) == [2, 0, 0]


@pytest.mark.django_db
def test_cancel_raises_version_of_cancelled_rows(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    claims.claim_batch(campaign.pk, 1, lease_seconds=60)

    assert campaign.cancel()

    # The row in flight keeps its claim, and its version.
    assert statuses(campaign) == ["in_flight", "cancelled", "cancelled"]
    assert versions(campaign) == [1, 1, 1]


@pytest.mark.django_db
def test_retry_failed_raises_version_of_queued_rows(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    sent, transient, permanent = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(transient, Recipient.Status.FAILED, "timed out", transient=True)
    assert set_outcome(permanent, Recipient.Status.FAILED, "mailbox full")
    assert campaign.complete()
    assert versions(campaign) == [1, 1, 1]

    assert campaign.retry_failed() == 1

    assert statuses(campaign) == ["sent", "queued", "failed"]
    assert versions(campaign) == [1, 2, 1]


@pytest.mark.django_db
def test_save_raises_version(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    recipient = campaign.recipients.order_by("id")[0]

    recipient.name = "Ada Lovelace"
    recipient.save()

    assert versions(campaign) == [1, 0, 0]


@pytest.mark.django_db
def test_stale_save_never_lowers_version(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    stale = campaign.recipients.order_by("id")[0]
    [claim] = claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    claims.record_outcomes(campaign.pk, [outcome(claim, Recipient.Status.SENT)])
    assert versions(campaign)[0] == 2
    assert stale.version == 0

    stale.name = "Ada Lovelace"
    stale.save()

    assert versions(campaign)[0] == 3


@pytest.mark.django_db
def test_update_setting_lower_version_raises_it(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    campaign.recipients.update(version=5)

    campaign.recipients.update(version=2)

    assert versions(campaign) == [6, 6, 6]


# The header's version: Campaign.read_version from with_progress()


def read(campaign: Campaign) -> tuple[int, Progress, str]:
    """Read the campaign as the header does; returns the read's version, counts and status."""
    current = Campaign.objects.with_progress().get(pk=campaign.pk)
    assert current.read_version is not None
    return current.read_version, current.progress(), current.status


@pytest.mark.django_db(transaction=True)
def test_read_version_grows_after_commit(make_campaign: MakeCampaign) -> None:
    campaign = processing(make_campaign)
    before_version, before_progress, _status = read(campaign)

    assert set_outcome(campaign.recipients.order_by("id")[0], Recipient.Status.SENT)

    after_version, after_progress, _status = read(campaign)
    assert after_version > before_version
    assert before_progress == Progress(queued=3)
    assert after_progress == Progress(queued=2, sent=1)


@pytest.mark.django_db(transaction=True)
def test_read_version_names_snapshot(make_campaign: MakeCampaign) -> None:
    # Reads from one snapshot get one version and the same data, even when
    # another session commits between them. A read after that commit gets a
    # greater version.
    campaign = processing(make_campaign)
    first_recipient = campaign.recipients.order_by("id")[0]

    def deliver_in_other_session() -> None:
        try:
            assert set_outcome(first_recipient, Recipient.Status.SENT)
        finally:
            connection.close()

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        first = read(campaign)
        other_session = threading.Thread(target=deliver_in_other_session)
        other_session.start()
        other_session.join(timeout=30)
        assert not other_session.is_alive()
        second = read(campaign)
    third = read(campaign)

    assert second == first
    assert first[1] == Progress(queued=3)
    assert third[0] > first[0]
    assert third[1] == Progress(queued=2, sent=1)


@pytest.mark.django_db(transaction=True)
def test_read_versions_follow_commit_order(make_campaign: MakeCampaign) -> None:
    # While deliveries commit one by one in another session, reads with a
    # greater version never show fewer sent, and reads with the same version
    # show the same counts.
    campaign = make_campaign(recipients=[{"email": f"user{n}@example.com"} for n in range(40)])
    assert campaign.start()
    everyone = list(campaign.recipients.order_by("id"))
    done = threading.Event()

    def deliver_one_by_one() -> None:
        try:
            for recipient in everyone:
                assert set_outcome(recipient, Recipient.Status.SENT)
        finally:
            done.set()
            connection.close()

    deliveries = threading.Thread(target=deliver_one_by_one)
    deliveries.start()
    reads = []
    while not done.is_set():
        reads.append(read(campaign))
    deliveries.join(timeout=30)
    reads.append(read(campaign))

    by_version: dict[int, Progress] = {}
    for version, progress, _status in reads:
        assert by_version.setdefault(version, progress) == progress, f"version {version}"
    ordered = [by_version[version] for version in sorted(by_version)]
    sent = [progress.sent for progress in ordered]
    assert sent == sorted(sent)
    assert [version for version, _progress, _status in reads] == sorted(v for v, _, _ in reads)
    assert ordered[-1] == Progress(sent=40)
    # The reads saw the deliveries happen, not only their end.
    assert len(set(sent)) > 2
