"""The suppressed recipient status: `mark_suppressed`, the status counts and the campaign page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import (
    FAILURE_REASON_MAX_LENGTH,
    FINAL_RECIPIENT_STATUSES,
    Campaign,
    Progress,
    Recipient,
    mark_suppressed,
)
from tests.outcomes import claim, set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]
REASON = "On the suppression list: unsubscribed through the link"


@pytest.fixture
def campaign(make_campaign: MakeCampaign) -> Campaign:
    """A processing campaign with five recipients, all queued."""
    campaign = make_campaign(
        recipients=[{"name": f"User {n}", "email": f"user{n}@example.com"} for n in range(5)]
    )
    assert campaign.start()
    return campaign


def recipients(campaign: Campaign) -> list[Recipient]:
    return list(campaign.recipients.order_by("id"))


def stored_counts(campaign: Campaign) -> dict[str, int]:
    """The campaign's counts read from its recipients."""
    return dict(Counter(campaign.recipients.values_list("status", flat=True)))


def test_suppressed_is_final() -> None:
    assert Recipient.Status.SUPPRESSED in FINAL_RECIPIENT_STATUSES


def test_marks_queued_and_in_flight(campaign: Campaign) -> None:
    queued, in_flight, *_ = recipients(campaign)
    assert claim(in_flight)
    before = timezone.now()

    changed = mark_suppressed(campaign.pk, [queued.pk, in_flight.pk], REASON)

    assert changed == 2
    for recipient in (queued, in_flight):
        recipient.refresh_from_db()
        assert recipient.status == Recipient.Status.SUPPRESSED
        assert recipient.failure_reason == REASON
        assert recipient.processed_at is not None
        assert recipient.processed_at >= before
        assert recipient.claim_token is None
        assert recipient.lease_expires_at is None
        assert recipient.next_attempt_at is None


def test_final_statuses_unchanged(campaign: Campaign) -> None:
    sent, failed, *_ = recipients(campaign)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, reason="mailbox full")

    changed = mark_suppressed(campaign.pk, [sent.pk, failed.pk], REASON)

    assert changed == 0
    sent.refresh_from_db()
    failed.refresh_from_db()
    assert sent.status == Recipient.Status.SENT
    assert failed.status == Recipient.Status.FAILED
    assert failed.failure_reason == "mailbox full"


def test_cancelled_unchanged(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    assert campaign.start()
    assert campaign.cancel()
    ids = [r.pk for r in recipients(campaign)]

    assert mark_suppressed(campaign.pk, ids, REASON) == 0
    assert stored_counts(campaign) == {Recipient.Status.CANCELLED: 3}


def test_other_campaign_unchanged(campaign: Campaign, make_campaign: MakeCampaign) -> None:
    other = make_campaign(name="Other")
    other_recipient = recipients(other)[0]

    changed = mark_suppressed(campaign.pk, [other_recipient.pk], REASON)

    assert changed == 0
    other_recipient.refresh_from_db()
    assert other_recipient.status == Recipient.Status.QUEUED


def test_empty_ids_change_nothing(campaign: Campaign) -> None:
    assert mark_suppressed(campaign.pk, [], REASON) == 0
    assert stored_counts(campaign) == {Recipient.Status.QUEUED: 5}


def test_long_reason_cut(campaign: Campaign) -> None:
    recipient = recipients(campaign)[0]

    mark_suppressed(campaign.pk, [recipient.pk], "x" * 400)

    recipient.refresh_from_db()
    assert recipient.failure_reason == "x" * FAILURE_REASON_MAX_LENGTH


def test_counts_follow(campaign: Campaign) -> None:
    first, second, third, *_ = recipients(campaign)
    assert claim(third)
    assert set_outcome(first, Recipient.Status.SENT)

    mark_suppressed(campaign.pk, [second.pk, third.pk], REASON)

    progress = campaign.progress()
    assert progress == Progress(queued=2, sent=1, suppressed=2)
    assert stored_counts(campaign) == {
        Recipient.Status.QUEUED: 2,
        Recipient.Status.SENT: 1,
        Recipient.Status.SUPPRESSED: 2,
    }
    assert progress.total == 5
    assert progress.processed == 3
    assert progress.percent == 60
    assert progress.of(Recipient.Status.SUPPRESSED) == 2


def test_counts_from_with_progress(campaign: Campaign) -> None:
    mark_suppressed(campaign.pk, [r.pk for r in recipients(campaign)[:2]], REASON)

    read = Campaign.objects.with_progress().get(pk=campaign.pk)

    assert read.progress() == Progress(queued=3, suppressed=2)


def test_campaign_completes_when_rest_suppressed(campaign: Campaign) -> None:
    first, *rest = recipients(campaign)
    assert set_outcome(first, Recipient.Status.SENT)
    mark_suppressed(campaign.pk, [r.pk for r in rest], REASON)

    assert campaign.complete()
    assert campaign.progress().percent == 100


def test_header_shows_suppressed_count(client: Client, campaign: Campaign) -> None:
    mark_suppressed(campaign.pk, [r.pk for r in recipients(campaign)[:2]], REASON)

    html = client.get(campaign.get_absolute_url()).content.decode()

    assert '<dt>Suppressed</dt><dd data-count="suppressed">2</dd>' in html
    assert '<dd data-count="queued">3</dd>' in html
    assert '<dd data-count="total">5</dd>' in html


def test_row_shows_status_and_reason(client: Client, campaign: Campaign) -> None:
    recipient = recipients(campaign)[0]
    mark_suppressed(campaign.pk, [recipient.pk], REASON)

    html = client.get(campaign.get_absolute_url(), {"status": "suppressed"}).content.decode()

    assert f'<tr id="recipient_{recipient.pk}" data-status="suppressed"' in html
    assert '<span class="badge badge-suppressed" data-status="suppressed">Suppressed</span>' in html
    # Shown as a reason, not in the red of a failure.
    assert f'<span class="text-violet-800">{REASON}</span>' in html
    assert '<option value="suppressed" selected>Suppressed</option>' in html
