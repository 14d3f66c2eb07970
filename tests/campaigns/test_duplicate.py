"""Duplicating a campaign: a new pending campaign with the same recipients, all queued."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import CAMPAIGN_NAME_MAX_LENGTH, Campaign, Progress, Recipient, copy_name
from tests.outcomes import claim, move_to_status, set_outcome

MakeCampaign = Callable[..., Campaign]

CONTACT_FIELDS = ("name", "email", "phone_number")


def duplicate_url(campaign: Campaign) -> str:
    return reverse("campaigns:duplicate", args=[campaign.pk])


def contacts(campaign: Campaign) -> list[tuple[str, str, str]]:
    return list(campaign.recipients.order_by("id").values_list(*CONTACT_FIELDS))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Launch", "Launch (copy)"),
        ("Launch (copy)", "Launch (copy 2)"),
        ("Launch (copy 2)", "Launch (copy 3)"),
        ("Launch (copy 41)", "Launch (copy 42)"),
        ("Launch (copy 0)", "Launch (copy 0) (copy)"),
        ("Launch(copy)", "Launch(copy) (copy)"),
        ("(copy)", "(copy) (copy)"),
    ],
)
def test_copy_name(name: str, expected: str) -> None:
    assert copy_name(name) == expected


def test_copy_name_fits_max_length() -> None:
    long_name = "x" * CAMPAIGN_NAME_MAX_LENGTH

    first = copy_name(long_name)
    second = copy_name(first)

    assert first == "x" * (CAMPAIGN_NAME_MAX_LENGTH - len(" (copy)")) + " (copy)"
    assert second == "x" * (CAMPAIGN_NAME_MAX_LENGTH - len(" (copy 2)")) + " (copy 2)"
    assert len(first) == CAMPAIGN_NAME_MAX_LENGTH
    assert len(second) == CAMPAIGN_NAME_MAX_LENGTH


def test_copy_name_drops_cut_spaces() -> None:
    name = "a" * 192 + " " * 8

    assert copy_name(name) == "a" * 192 + " (copy)"


@pytest.mark.django_db
def test_duplicate_pending_campaign(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(rate_limit_per_second=2.5)

    response = client.post(duplicate_url(campaign), follow=True)

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.redirect_chain == [(copy.get_absolute_url(), 303)]
    assert copy.name == "Spring launch (copy)"
    assert copy.status == Campaign.Status.PENDING
    assert copy.rate_limit_per_second == 2.5
    assert contacts(copy) == contacts(campaign)
    html = response.content.decode()
    assert "Campaign “Spring launch (copy)” created as a copy of “Spring launch”" in html
    assert campaign.recipients.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["processing", "paused", "completed", "cancelled"])
def test_duplicate_any_status(client: Client, make_campaign: MakeCampaign, status: str) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    response = client.post(duplicate_url(campaign))

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 303
    assert response["Location"] == copy.get_absolute_url()
    assert copy.status == Campaign.Status.PENDING
    assert contacts(copy) == contacts(campaign)
    campaign.refresh_from_db()
    assert campaign.status == status


@pytest.mark.django_db
def test_duplicate_resets_delivery(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    ada, grace, alan = campaign.recipients.order_by("id")
    assert set_outcome(ada, Recipient.Status.SENT)
    assert set_outcome(grace, Recipient.Status.FAILED, reason="mailbox full")
    assert claim(alan)

    client.post(duplicate_url(campaign))

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    for recipient in copy.recipients.all():
        assert recipient.status == Recipient.Status.QUEUED
        assert recipient.failure_reason == ""
        assert recipient.processed_at is None
        assert recipient.attempts == 0
        assert recipient.attempt_base == 0
        assert recipient.next_attempt_at is None
        assert recipient.claim_token is None
        assert recipient.claimed_at is None
        assert recipient.lease_expires_at is None
        assert recipient.last_error_transient is False
        assert recipient.provider_message_id == ""
        assert recipient.version == 0
        assert not recipient.delivery_attempts.exists()
    # The status count triggers counted the copied rows as queued.
    assert copy.progress() == Progress(queued=3)
    assert campaign.progress() == Progress(in_flight=1, sent=1, failed=1)


@pytest.mark.django_db
def test_duplicate_progress_matches_rows(make_campaign: MakeCampaign) -> None:
    rows = [{"email": f"r{number}@example.com"} for number in range(250)]
    campaign = make_campaign(recipients=rows)

    copy = campaign.duplicate()

    assert copy.progress() == Progress(queued=250)
    assert copy.recipients.count() == 250
    assert copy.start()


@pytest.mark.django_db
def test_duplicate_of_copy_numbers(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    client.post(duplicate_url(campaign))
    first = Campaign.objects.get(name="Spring launch (copy)")
    client.post(duplicate_url(first))

    second = Campaign.objects.get(name="Spring launch (copy 2)")
    assert contacts(second) == contacts(campaign)


@pytest.mark.django_db
def test_duplicate_without_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])

    response = client.post(duplicate_url(campaign))

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 303
    assert copy.progress() == Progress()


@pytest.mark.django_db
def test_duplicate_get_not_allowed(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = client.get(duplicate_url(campaign))

    assert response.status_code == 405
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_duplicate_unknown_not_found(client: Client) -> None:
    response = client.post(reverse("campaigns:duplicate", args=[999999]))

    assert response.status_code == 404
    assert not Campaign.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "completed"])
def test_page_offers_duplicate(client: Client, make_campaign: MakeCampaign, status: str) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    html = client.get(campaign.get_absolute_url()).content.decode()

    assert f'action="{duplicate_url(campaign)}"' in html
    assert ">Duplicate</button>" in html
