"""Status transitions of campaigns and recipients, and the counts read from them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Progress, Recipient
from tests.outcomes import claim, move_to_status, set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]


def finish_all(campaign: Campaign) -> None:
    for recipient in campaign.recipients.all():
        assert set_outcome(recipient, Recipient.Status.SENT)


def statuses(campaign: Campaign) -> list[str]:
    """The campaign's recipient statuses in id order."""
    return list(campaign.recipients.order_by("id").values_list("status", flat=True))


def campaign_in(make_campaign: MakeCampaign, status: str) -> Campaign:
    """Create a campaign with three recipients and move it to `status`."""
    campaign = make_campaign()
    move_to_status(campaign, status)
    return campaign


# Campaign.start


def test_start_moves_pending_to_processing(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    before = timezone.now()

    assert campaign.start() is True

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.started_at is not None
    assert before <= campaign.started_at <= timezone.now()


def test_start_updates_instance(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    campaign.start()

    stored = Campaign.objects.get(pk=campaign.pk)
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.started_at == stored.started_at


def test_start_twice_returns_false(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    assert campaign.start() is True
    started_at = Campaign.objects.get(pk=campaign.pk).started_at

    assert campaign.start() is False

    campaign.refresh_from_db()
    assert campaign.started_at == started_at


def test_start_from_stale_copy_returns_false(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    stale_copy = Campaign.objects.get(pk=campaign.pk)
    assert campaign.start() is True

    assert stale_copy.start() is False


def test_start_without_recipients_rejected(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])

    assert campaign.start() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert campaign.started_at is None


def test_start_completed_campaign_rejected(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    finish_all(campaign)
    assert campaign.complete() is True

    assert campaign.start() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


# Campaign.complete


def test_complete_rejected_while_recipient_queued(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *_ = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.completed_at is None


def test_complete_rejected_while_recipient_in_flight(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *others = campaign.recipients.order_by("id")
    for recipient in others:
        set_outcome(recipient, Recipient.Status.SENT)
    assert claim(first)

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.completed_at is None


def test_complete_rejected_while_retry_scheduled(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *others = campaign.recipients.order_by("id")
    for recipient in others:
        set_outcome(recipient, Recipient.Status.SENT)
    retry_at = timezone.now() + timedelta(minutes=5)
    set_outcome(first, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=retry_at)

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING


def test_complete_succeeds_when_none_queued(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *others = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.FAILED, "Mailbox full")
    for recipient in others:
        set_outcome(recipient, Recipient.Status.SENT)
    before = timezone.now()

    assert campaign.complete() is True

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None
    assert before <= campaign.completed_at <= timezone.now()


def test_complete_pending_campaign_rejected(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    finish_all(campaign)

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert campaign.completed_at is None


def test_complete_paused_campaign_rejected(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    finish_all(campaign)
    assert campaign.pause("by hand") is True

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.completed_at is None


def test_complete_twice_returns_false(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    finish_all(campaign)
    assert campaign.complete() is True
    completed_at = Campaign.objects.get(pk=campaign.pk).completed_at

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.completed_at == completed_at


# Campaign.pause


@pytest.fixture
def processing(make_campaign: MakeCampaign) -> Campaign:
    """A processing campaign with three queued recipients."""
    campaign = make_campaign()
    assert campaign.start()
    return campaign


def test_pause_moves_processing_to_paused(processing: Campaign) -> None:
    before = timezone.now()

    assert processing.pause("paused by an operator") is True

    stored = Campaign.objects.get(pk=processing.pk)
    assert stored.status == Campaign.Status.PAUSED
    assert stored.pause_reason == "paused by an operator"
    assert stored.paused_at is not None
    assert before <= stored.paused_at <= timezone.now()


def test_pause_updates_instance(processing: Campaign) -> None:
    processing.pause("too many failures")

    assert processing.status == Campaign.Status.PAUSED
    assert processing.pause_reason == "too many failures"
    assert processing.paused_at is not None


def test_pause_cuts_long_reason(processing: Campaign) -> None:
    reason = "".join(str(i % 10) for i in range(300))

    assert processing.pause(reason) is True

    processing.refresh_from_db()
    assert processing.pause_reason == reason[:255]


def test_pause_keeps_recipients(processing: Campaign) -> None:
    _queued, in_flight, sent = processing.recipients.order_by("id")
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)

    assert processing.pause() is True

    assert statuses(processing) == ["queued", "in_flight", "sent"]
    in_flight_token = in_flight.claim_token
    in_flight.refresh_from_db()
    assert in_flight.claim_token == in_flight_token


def test_pause_twice_returns_false(processing: Campaign) -> None:
    assert processing.pause("first") is True
    paused_at = Campaign.objects.get(pk=processing.pk).paused_at

    assert processing.pause("second") is False

    processing.refresh_from_db()
    assert processing.pause_reason == "first"
    assert processing.paused_at == paused_at


@pytest.mark.parametrize("status", ["pending", "completed", "cancelled"])
def test_pause_rejected_unless_processing(make_campaign: MakeCampaign, status: str) -> None:
    campaign = campaign_in(make_campaign, status)

    assert campaign.pause("by hand") is False

    campaign.refresh_from_db()
    assert campaign.status == status
    assert campaign.paused_at is None
    assert campaign.pause_reason == ""


# Campaign.resume


def test_resume_moves_paused_to_processing(processing: Campaign) -> None:
    processing.count_outcomes(processed=10, failed=4)
    assert processing.pause("4 failures since the last resume (limit 4)")

    assert processing.resume() is True

    stored = Campaign.objects.get(pk=processing.pk)
    assert stored.status == Campaign.Status.PROCESSING
    assert stored.pause_reason == ""
    assert stored.processed_since_resume == 0
    assert stored.failed_since_resume == 0


def test_resume_updates_instance(processing: Campaign) -> None:
    assert processing.pause("by hand")

    processing.resume()

    assert processing.status == Campaign.Status.PROCESSING
    assert processing.pause_reason == ""


def test_resume_twice_returns_false(processing: Campaign) -> None:
    assert processing.pause("by hand")
    assert processing.resume() is True

    assert processing.resume() is False

    processing.refresh_from_db()
    assert processing.status == Campaign.Status.PROCESSING


@pytest.mark.parametrize("status", ["pending", "processing", "completed", "cancelled"])
def test_resume_rejected_unless_paused(make_campaign: MakeCampaign, status: str) -> None:
    campaign = campaign_in(make_campaign, status)
    campaign.count_outcomes(processed=5, failed=2)

    assert campaign.resume() is False

    campaign.refresh_from_db()
    assert campaign.status == status
    # It should keep the counts that only a resume resets.
    assert (campaign.processed_since_resume, campaign.failed_since_resume) == (5, 2)


# Campaign.cancel


@pytest.mark.parametrize("status", ["pending", "processing", "paused"])
def test_cancel_moves_to_cancelled(make_campaign: MakeCampaign, status: str) -> None:
    campaign = campaign_in(make_campaign, status)
    before = timezone.now()

    assert campaign.cancel() is True

    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.status == Campaign.Status.CANCELLED
    assert stored.cancelled_at is not None
    assert before <= stored.cancelled_at <= timezone.now()
    assert campaign.status == Campaign.Status.CANCELLED
    assert statuses(campaign) == ["cancelled"] * 3


def test_cancel_cancels_queued_recipients(processing: Campaign) -> None:
    waiting, retrying, _other = processing.recipients.order_by("id")
    retry_at = timezone.now() + timedelta(minutes=5)
    assert set_outcome(
        retrying, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=retry_at
    )
    before = timezone.now()

    assert processing.cancel() is True

    for recipient in (waiting, retrying):
        recipient.refresh_from_db()
        assert recipient.status == Recipient.Status.CANCELLED
        assert recipient.next_attempt_at is None
        assert recipient.processed_at is not None
        assert before <= recipient.processed_at <= timezone.now()


def test_cancel_keeps_in_flight_and_finished(processing: Campaign) -> None:
    in_flight, sent, failed = processing.recipients.order_by("id")
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "Mailbox full")

    assert processing.cancel() is True

    # It should leave the claim to its worker, which records the outcome.
    assert statuses(processing) == ["in_flight", "sent", "failed"]
    token = in_flight.claim_token
    in_flight.refresh_from_db()
    assert in_flight.claim_token == token
    assert in_flight.lease_expires_at is not None
    failed.refresh_from_db()
    assert failed.failure_reason == "Mailbox full"


def test_cancel_leaves_other_campaigns(processing: Campaign, make_campaign: MakeCampaign) -> None:
    other = make_campaign(name="Other")
    assert other.start()

    assert processing.cancel() is True

    assert statuses(other) == ["queued"] * 3
    other.refresh_from_db()
    assert other.status == Campaign.Status.PROCESSING


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_cancel_rejected_when_finished(make_campaign: MakeCampaign, status: str) -> None:
    campaign = campaign_in(make_campaign, status)
    before = statuses(campaign)
    cancelled_at = campaign.cancelled_at

    assert campaign.cancel() is False

    campaign.refresh_from_db()
    assert campaign.status == status
    assert campaign.cancelled_at == cancelled_at
    assert statuses(campaign) == before


# Campaign.retry_failed


@pytest.fixture
def completed_with_failures(make_campaign: MakeCampaign) -> Campaign:
    """A completed campaign: one sent, one failed transiently, one failed permanently."""
    campaign = make_campaign()
    assert campaign.start()
    sent, transient, permanent = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    # Three attempts, the last two of them transient errors.
    assert set_outcome(
        transient,
        Recipient.Status.QUEUED,
        "timed out",
        transient=True,
        retry_at=timezone.now(),
    )
    assert set_outcome(
        transient,
        Recipient.Status.QUEUED,
        "timed out",
        transient=True,
        retry_at=timezone.now(),
    )
    assert set_outcome(transient, Recipient.Status.FAILED, "timed out", transient=True)
    assert set_outcome(permanent, Recipient.Status.FAILED, "Mailbox full")
    campaign.count_outcomes(processed=3, failed=2)
    assert campaign.complete()
    return campaign


def test_retry_failed_queues_transient_failures(completed_with_failures: Campaign) -> None:
    campaign = completed_with_failures
    _sent, transient, _permanent = campaign.recipients.order_by("id")

    assert campaign.retry_failed() == 1

    transient.refresh_from_db()
    assert transient.status == Recipient.Status.QUEUED
    assert transient.attempts == 3
    assert transient.attempt_base == 3
    assert transient.next_attempt_at is None
    assert transient.failure_reason == ""
    assert transient.processed_at is None


def test_retry_failed_reopens_campaign(completed_with_failures: Campaign) -> None:
    campaign = completed_with_failures

    assert campaign.retry_failed() == 1

    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.status == Campaign.Status.PROCESSING
    assert stored.completed_at is None
    assert stored.processed_since_resume == 0
    assert stored.failed_since_resume == 0
    assert campaign.status == Campaign.Status.PROCESSING


def test_retry_failed_keeps_sent_and_permanent(completed_with_failures: Campaign) -> None:
    campaign = completed_with_failures
    sent, _transient, permanent = campaign.recipients.order_by("id")
    sent_before = Recipient.objects.get(pk=sent.pk)

    assert campaign.retry_failed() == 1

    assert statuses(campaign) == ["sent", "queued", "failed"]
    sent.refresh_from_db()
    assert sent.processed_at == sent_before.processed_at
    assert sent.provider_message_id == sent_before.provider_message_id
    permanent.refresh_from_db()
    assert permanent.failure_reason == "Mailbox full"
    assert permanent.attempt_base == 0


def test_retry_failed_twice_returns_zero(completed_with_failures: Campaign) -> None:
    campaign = completed_with_failures
    assert campaign.retry_failed() == 1

    assert campaign.retry_failed() == 0

    assert statuses(campaign) == ["sent", "queued", "failed"]


def test_retry_failed_rejected_without_transient(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    assert campaign.start()
    sent, first, second = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(first, Recipient.Status.FAILED, "Mailbox full")
    assert set_outcome(second, Recipient.Status.FAILED, "Number not reachable")
    assert campaign.complete()

    assert campaign.retry_failed() == 0

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None
    assert statuses(campaign) == ["sent", "failed", "failed"]


@pytest.mark.parametrize("status", ["processing", "paused", "cancelled"])
def test_retry_failed_rejected_unless_completed(make_campaign: MakeCampaign, status: str) -> None:
    campaign = make_campaign()
    assert campaign.start()
    first, *_others = campaign.recipients.order_by("id")
    assert set_outcome(first, Recipient.Status.FAILED, "timed out", transient=True)
    if status == Campaign.Status.PAUSED:
        assert campaign.pause("by hand")
    elif status == Campaign.Status.CANCELLED:
        assert campaign.cancel()
    before = statuses(campaign)

    assert campaign.retry_failed() == 0

    campaign.refresh_from_db()
    assert campaign.status == status
    assert statuses(campaign) == before
    first.refresh_from_db()
    assert first.status == Recipient.Status.FAILED
    assert first.attempt_base == 0


# Campaign.count_outcomes


def test_count_outcomes_adds_and_returns_totals(processing: Campaign) -> None:
    assert processing.count_outcomes(processed=3, failed=1) == (3, 1)
    assert processing.count_outcomes(processed=2, failed=2) == (5, 3)

    stored = Campaign.objects.get(pk=processing.pk)
    assert (stored.processed_since_resume, stored.failed_since_resume) == (5, 3)


def test_count_outcomes_restarts_after_resume(processing: Campaign) -> None:
    processing.count_outcomes(processed=8, failed=6)
    assert processing.pause("6 failures")
    assert processing.resume()

    assert processing.count_outcomes(processed=1, failed=0) == (1, 0)


def test_count_outcomes_of_deleted_campaign(processing: Campaign) -> None:
    campaign_id = processing.pk
    Campaign.objects.filter(pk=campaign_id).delete()

    assert Campaign(pk=campaign_id).count_outcomes(processed=1, failed=1) == (0, 0)


# Campaign.delete_if_pending


def test_delete_if_pending_deletes_recipients(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")

    assert campaign.delete_if_pending() is True

    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Recipient.objects.filter(campaign_id=campaign.pk).exists()
    assert other.recipients.count() == 3


@pytest.mark.parametrize("status", ["processing", "paused", "completed", "cancelled"])
def test_delete_if_pending_keeps_dispatched(make_campaign: MakeCampaign, status: str) -> None:
    campaign = campaign_in(make_campaign, status)

    assert campaign.delete_if_pending() is False

    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert campaign.recipients.count() == 3


def test_delete_if_pending_from_stale_copy(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    stale_copy = Campaign.objects.get(pk=campaign.pk)
    campaign.start()

    assert stale_copy.delete_if_pending() is False

    assert Campaign.objects.filter(pk=campaign.pk).exists()


# Campaign.progress and Progress


def test_progress_counts_by_status(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, _third = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")

    progress = campaign.progress()

    assert progress.queued == 1
    assert progress.in_flight == 0
    assert progress.sent == 1
    assert progress.failed == 1
    assert progress.cancelled == 0
    assert progress.total == 3
    assert progress.processed == 2
    # 2 of 3 is 66.7 %, rounded down.
    assert progress.percent == 66


def test_progress_counts_in_flight_and_cancelled(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        recipients=[{"email": f"user{n}@example.com"} for n in range(4)],
    )
    campaign.start()
    in_flight, sent, *_queued = campaign.recipients.order_by("id")
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert campaign.cancel()

    progress = campaign.progress()

    assert progress == Progress(queued=0, in_flight=1, sent=1, failed=0, cancelled=2)
    assert progress.total == 4
    # It should count cancelled recipients as processed, but not the one in flight.
    assert progress.processed == 3
    assert progress.percent == 75


def test_progress_of_empty_campaign(make_campaign: MakeCampaign) -> None:
    progress = make_campaign(recipients=[]).progress()

    assert progress == Progress()
    assert progress.total == 0
    assert progress.percent == 0


def test_progress_when_all_processed(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    finish_all(campaign)

    progress = campaign.progress()

    assert progress.queued == 0
    assert progress.processed == 3
    assert progress.percent == 100


def test_progress_ignores_other_campaigns(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")
    other.start()
    finish_all(other)

    progress = campaign.progress()

    assert progress.queued == 3
    assert progress.sent == 0


@pytest.mark.parametrize(
    ("progress", "percent"),
    [
        (Progress(queued=199, sent=1), 0),
        (Progress(queued=1, sent=198, failed=1), 99),
        (Progress(in_flight=1, sent=198, cancelled=1), 99),
        (Progress(sent=1, failed=1), 100),
        (Progress(sent=1, cancelled=3), 100),
    ],
)
def test_progress_percent_rounds_down(progress: Progress, percent: int) -> None:
    assert progress.percent == percent


# Campaign.objects.with_progress


def test_with_progress_annotates_each_campaign(
    make_campaign: MakeCampaign, django_assert_num_queries: Callable[[int], Any]
) -> None:
    busy = make_campaign(name="Busy")
    busy.start()
    first, second, third = busy.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")
    claim(third)
    fresh = make_campaign(name="Fresh", recipients=[{"email": "ada@example.com"}])
    empty = make_campaign(name="Empty", recipients=[])

    # It should read every campaign's counts in the one query that reads the campaigns.
    with django_assert_num_queries(1):
        campaigns = {c.pk: c for c in Campaign.objects.with_progress()}
        progress = {pk: campaign.progress() for pk, campaign in campaigns.items()}

    assert progress[busy.pk] == Progress(in_flight=1, sent=1, failed=1)
    assert progress[fresh.pk] == Progress(queued=1)
    assert progress[empty.pk] == Progress()
    # It should give each read a version, the same for every row of one statement.
    versions = {campaign.read_version for campaign in campaigns.values()}
    assert len(versions) == 1
    [version] = versions
    assert version is not None and version > 0


def test_with_progress_matches_counting_rows(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[{"email": f"user{n}@example.com"} for n in range(5)])
    campaign.start()
    sent, failed, in_flight, _first_queued, _second_queued = campaign.recipients.order_by("id")
    set_outcome(sent, Recipient.Status.SENT)
    set_outcome(failed, Recipient.Status.FAILED, "Mailbox full")
    claim(in_flight)
    campaign.cancel()

    progress = Campaign.objects.with_progress().get(pk=campaign.pk).progress()

    by_status = dict(
        campaign.recipients.values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    # Progress names its fields after the recipient statuses.
    assert progress == Progress(**{s: by_status.get(s, 0) for s in Recipient.Status.values})
    assert progress == Progress(in_flight=1, sent=1, failed=1, cancelled=2)


def test_with_progress_keeps_one_row_per_campaign(make_campaign: MakeCampaign) -> None:
    make_campaign(name="First")
    make_campaign(name="Second")

    assert Campaign.objects.with_progress().count() == 2


def test_read_version_none_without_with_progress(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    assert Campaign.objects.get(pk=campaign.pk).read_version is None
