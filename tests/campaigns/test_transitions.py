"""Status transitions of campaigns and recipients, and the counts read from them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from campaigns.models import FAILURE_REASON_MAX_LENGTH, Campaign, Progress, Recipient

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]


def finish_all(campaign: Campaign) -> None:
    for recipient in campaign.recipients.all():
        assert recipient.mark_sent()


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
    first.mark_sent()

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.completed_at is None


def test_complete_succeeds_when_none_queued(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *others = campaign.recipients.order_by("id")
    first.mark_failed("Mailbox full")
    for recipient in others:
        recipient.mark_sent()
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


def test_complete_twice_returns_false(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    finish_all(campaign)
    assert campaign.complete() is True
    completed_at = Campaign.objects.get(pk=campaign.pk).completed_at

    assert campaign.complete() is False

    campaign.refresh_from_db()
    assert campaign.completed_at == completed_at


# Recipient.mark_sent and Recipient.mark_failed


@pytest.fixture
def recipient(make_campaign: MakeCampaign) -> Recipient:
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}])
    campaign.start()
    return campaign.recipients.get()


def test_mark_sent_moves_queued_to_sent(recipient: Recipient) -> None:
    before = timezone.now()

    assert recipient.mark_sent() is True

    recipient.refresh_from_db()
    assert recipient.status == Recipient.Status.SENT
    assert recipient.failure_reason == ""
    assert recipient.processed_at is not None
    assert before <= recipient.processed_at <= timezone.now()


def test_mark_sent_twice_returns_false(recipient: Recipient) -> None:
    assert recipient.mark_sent() is True
    processed_at = Recipient.objects.get(pk=recipient.pk).processed_at

    assert recipient.mark_sent() is False

    recipient.refresh_from_db()
    assert recipient.processed_at == processed_at


def test_mark_failed_moves_queued_to_failed(recipient: Recipient) -> None:
    assert recipient.mark_failed("Mailbox full") is True

    recipient.refresh_from_db()
    assert recipient.status == Recipient.Status.FAILED
    assert recipient.failure_reason == "Mailbox full"
    assert recipient.processed_at is not None


def test_mark_failed_twice_returns_false(recipient: Recipient) -> None:
    assert recipient.mark_failed("Mailbox full") is True

    assert recipient.mark_failed("Other reason") is False

    recipient.refresh_from_db()
    assert recipient.failure_reason == "Mailbox full"


def test_mark_failed_after_sent_rejected(recipient: Recipient) -> None:
    stale_copy = Recipient.objects.get(pk=recipient.pk)
    assert recipient.mark_sent() is True

    assert stale_copy.mark_failed("Too late") is False

    recipient.refresh_from_db()
    assert recipient.status == Recipient.Status.SENT
    assert recipient.failure_reason == ""


def test_mark_sent_after_failed_rejected(recipient: Recipient) -> None:
    stale_copy = Recipient.objects.get(pk=recipient.pk)
    assert recipient.mark_failed("Mailbox full") is True

    assert stale_copy.mark_sent() is False

    recipient.refresh_from_db()
    assert recipient.status == Recipient.Status.FAILED


def test_mark_failed_cuts_long_reason(recipient: Recipient) -> None:
    reason = "".join(str(i % 10) for i in range(FAILURE_REASON_MAX_LENGTH + 45))

    assert recipient.mark_failed(reason) is True

    recipient.refresh_from_db()
    assert FAILURE_REASON_MAX_LENGTH == 255
    assert recipient.failure_reason == reason[:255]


# Campaign.delete_if_pending


def test_delete_if_pending_deletes_recipients(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")

    assert campaign.delete_if_pending() is True

    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Recipient.objects.filter(campaign_id=campaign.pk).exists()
    assert other.recipients.count() == 3


@pytest.mark.parametrize("dispatch", ["start", "complete"])
def test_delete_if_pending_keeps_dispatched(make_campaign: MakeCampaign, dispatch: str) -> None:
    campaign = make_campaign()
    campaign.start()
    if dispatch == "complete":
        finish_all(campaign)
        assert campaign.complete() is True

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
    first.mark_sent()
    second.mark_failed("Mailbox full")

    progress = campaign.progress()

    assert progress.queued == 1
    assert progress.sent == 1
    assert progress.failed == 1
    assert progress.total == 3
    assert progress.processed == 2
    # 2 of 3 is 66.7 %, rounded down.
    assert progress.percent == 66


def test_progress_of_empty_campaign(make_campaign: MakeCampaign) -> None:
    progress = make_campaign(recipients=[]).progress()

    assert progress == Progress(queued=0, sent=0, failed=0)
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
        (Progress(sent=1, failed=1), 100),
    ],
)
def test_progress_percent_rounds_down(progress: Progress, percent: int) -> None:
    assert progress.percent == percent


# Campaign.objects.with_counts


def test_with_counts_annotates_each_campaign(make_campaign: MakeCampaign) -> None:
    busy = make_campaign(name="Busy")
    busy.start()
    first, second, _third = busy.recipients.order_by("id")
    first.mark_sent()
    second.mark_failed("Mailbox full")
    fresh = make_campaign(name="Fresh", recipients=[{"email": "ada@example.com"}])
    empty = make_campaign(name="Empty", recipients=[])

    # django-stubs cannot see the annotations that with_counts() adds.
    rows = Campaign.objects.with_counts().values_list(  # type: ignore[misc]
        "pk", "recipient_count", "sent_count", "failed_count"
    )
    counts = {pk: (total, sent, failed) for pk, total, sent, failed in rows}

    # Each value is (recipient_count, sent_count, failed_count).
    assert counts[busy.pk] == (3, 1, 1)
    assert counts[fresh.pk] == (1, 0, 0)
    assert counts[empty.pk] == (0, 0, 0)


def test_with_counts_keeps_one_row_per_campaign(make_campaign: MakeCampaign) -> None:
    make_campaign(name="First")
    make_campaign(name="Second")

    assert Campaign.objects.with_counts().count() == 2
