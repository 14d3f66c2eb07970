"""Deleting a pending campaign. A dispatched campaign is kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from tests.outcomes import move_to_status

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

READ_ONLY_MESSAGE = "This campaign was already dispatched; it is read-only."


def delete_url(campaign: Campaign) -> str:
    return reverse("campaigns:delete", args=[campaign.pk])


def test_delete_page_asks_for_confirmation(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = client.get(delete_url(campaign))
    html = response.content.decode()

    assert response.status_code == 200
    assert "Delete “Spring launch”?" in html
    assert "its 3 recipients will be removed" in html
    assert '<form method="post"' in html
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_delete_page_counts_one_recipient(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[{"email": "ada@example.com"}])

    html = client.get(delete_url(campaign)).content.decode()

    assert "its 1 recipient will be removed" in html


def test_delete_removes_campaign_and_recipients(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")

    response = client.post(delete_url(campaign))

    assert response.status_code == 303
    assert response["Location"] == reverse("campaigns:index")
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Recipient.objects.filter(campaign_id=campaign.pk).exists()
    assert other.recipients.count() == 3


def test_delete_shows_success_message(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = client.post(delete_url(campaign), follow=True)

    assert "Campaign “Spring launch” deleted." in response.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_dispatched_campaign_not_deleted(
    client: Client, make_campaign: MakeCampaign, method: str
) -> None:
    campaign = make_campaign()
    assert campaign.start()

    response = getattr(client, method)(delete_url(campaign), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert READ_ONLY_MESSAGE in response.content.decode()
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert campaign.recipients.count() == 3


@pytest.mark.parametrize("status", ["paused", "completed", "cancelled"])
def test_campaign_after_dispatch_not_deleted(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    response = client.post(delete_url(campaign))

    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert campaign.recipients.count() == 3


def test_delete_unknown_campaign_not_found(client: Client) -> None:
    response = client.post(reverse("campaigns:delete", args=[999999]))

    assert response.status_code == 404
