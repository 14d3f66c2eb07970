"""The admin adds, changes and deletes recipients only while their campaign is pending.

Each test that shows a frozen campaign's recipients unchanged has a twin for
a pending campaign, which shows that the same request does change them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from tests.outcomes import set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

NOT_PENDING = ["processing", "paused", "completed", "cancelled"]
# The inline formset's prefix: Recipient.campaign's related_name.
PREFIX = "recipients"


def campaign_in_status(make_campaign: MakeCampaign, status: str) -> Campaign:
    """Create a campaign of three recipients in `status`. Once dispatched, the first is sent."""
    campaign = make_campaign()
    if status == "pending":
        return campaign
    assert campaign.start()
    first = campaign.recipients.order_by("id").first()
    assert first is not None
    assert set_outcome(first, Recipient.Status.SENT)
    if status == "completed":
        for recipient in campaign.recipients.filter(status=Recipient.Status.QUEUED):
            assert set_outcome(recipient, Recipient.Status.SENT)
        assert campaign.complete()
    elif status == "paused":
        assert campaign.pause("paused by a test")
    elif status == "cancelled":
        assert campaign.cancel()
    campaign.refresh_from_db()
    assert campaign.status == status
    return campaign


def recipient_rows(campaign: Campaign) -> list[tuple[str, str, str, str]]:
    return list(
        campaign.recipients.order_by("id").values_list("name", "email", "phone_number", "status")
    )


def change_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def inline_post(campaign: Campaign) -> dict[str, str]:
    """Build the campaign change form: first email changed, second row deleted, a row added."""
    recipients = list(campaign.recipients.order_by("id"))
    data = {
        "name": campaign.name,
        "rate_limit_per_second": "",
        f"{PREFIX}-TOTAL_FORMS": str(len(recipients) + 1),
        f"{PREFIX}-INITIAL_FORMS": str(len(recipients)),
        f"{PREFIX}-MIN_NUM_FORMS": "0",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, recipient in enumerate(recipients):
        data |= {
            f"{PREFIX}-{index}-id": str(recipient.pk),
            f"{PREFIX}-{index}-campaign": str(campaign.pk),
            f"{PREFIX}-{index}-name": recipient.name,
            f"{PREFIX}-{index}-email": recipient.email,
            f"{PREFIX}-{index}-phone_number": recipient.phone_number,
        }
    data[f"{PREFIX}-0-email"] = "changed@example.com"
    data[f"{PREFIX}-1-DELETE"] = "on"
    added = len(recipients)
    data |= {
        f"{PREFIX}-{added}-campaign": str(campaign.pk),
        f"{PREFIX}-{added}-name": "Added",
        f"{PREFIX}-{added}-email": "added@example.com",
        f"{PREFIX}-{added}-phone_number": "",
    }
    return data


# The campaign page and its inline


@pytest.mark.parametrize("status", NOT_PENDING)
def test_inline_read_only_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)

    response = admin_client.get(change_url(campaign))

    assert response.status_code == 200
    html = response.content.decode()
    assert "ada@example.com" in html
    assert f'name="{PREFIX}-0-email"' not in html
    assert f'name="{PREFIX}-0-DELETE"' not in html
    # The admin's script offers "Add another Recipient" only below this maximum.
    assert f'name="{PREFIX}-MAX_NUM_FORMS" value="0"' in html
    [inline] = response.context["inline_admin_formsets"]
    assert not inline.has_add_permission
    assert not inline.has_change_permission
    assert not inline.has_delete_permission


def test_inline_editable_when_pending(admin_client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = admin_client.get(change_url(campaign))

    html = response.content.decode()
    assert f'name="{PREFIX}-0-email"' in html
    assert f'name="{PREFIX}-0-DELETE"' in html
    assert f'name="{PREFIX}-MAX_NUM_FORMS" value="1000"' in html


@pytest.mark.parametrize("status", NOT_PENDING)
def test_inline_post_changes_nothing_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)
    before = recipient_rows(campaign)

    admin_client.post(change_url(campaign), inline_post(campaign))

    assert recipient_rows(campaign) == before
    assert not Recipient.objects.filter(email="added@example.com").exists()
    campaign.refresh_from_db()
    assert campaign.status == status


def test_inline_post_saves_when_pending(admin_client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = admin_client.post(change_url(campaign), inline_post(campaign))

    assert response.status_code == 302
    assert recipient_rows(campaign) == [
        ("Ada", "changed@example.com", "", "queued"),
        ("Alan", "alan@example.com", "+12025550102", "queued"),
        ("Added", "added@example.com", "", "queued"),
    ]


@pytest.mark.parametrize("status", NOT_PENDING)
def test_campaign_delete_denied_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)
    url = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert campaign.recipients.count() == 3


def test_campaign_delete_allowed_when_pending(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    url = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


# The recipient admin


def first_recipient(campaign: Campaign) -> Recipient:
    recipient = campaign.recipients.order_by("id").first()
    assert recipient is not None
    return recipient


def recipient_post(campaign: Campaign, email: str) -> dict[str, str]:
    return {
        "campaign": str(campaign.pk),
        "name": "Edited",
        "email": email,
        "phone_number": "",
        "_save": "Save",
    }


@pytest.mark.parametrize("status", NOT_PENDING)
def test_recipient_page_read_only_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)
    recipient = first_recipient(campaign)
    url = reverse("admin:campaigns_recipient_change", args=[recipient.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "ada@example.com" in html
    assert 'name="email"' not in html
    assert reverse("admin:campaigns_recipient_delete", args=[recipient.pk]) not in html


@pytest.mark.parametrize("status", NOT_PENDING)
def test_recipient_change_denied_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)
    recipient = first_recipient(campaign)
    url = reverse("admin:campaigns_recipient_change", args=[recipient.pk])

    response = admin_client.post(url, recipient_post(campaign, "changed@example.com"))

    assert response.status_code == 403
    recipient.refresh_from_db()
    assert recipient.email == "ada@example.com"
    assert recipient.name == "Ada"


def test_recipient_change_saved_when_pending(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    recipient = first_recipient(campaign)
    url = reverse("admin:campaigns_recipient_change", args=[recipient.pk])

    response = admin_client.post(url, recipient_post(campaign, "changed@example.com"))

    assert response.status_code == 302
    recipient.refresh_from_db()
    assert recipient.email == "changed@example.com"


@pytest.mark.parametrize("status", NOT_PENDING)
def test_recipient_move_to_frozen_campaign_rejected(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    frozen = campaign_in_status(make_campaign, status)
    pending = make_campaign(name="Pending", recipients=[{"email": "bob@example.com"}])
    recipient = first_recipient(pending)
    url = reverse("admin:campaigns_recipient_change", args=[recipient.pk])

    response = admin_client.post(url, recipient_post(frozen, "bob@example.com"))

    assert response.status_code == 200
    assert "only while their campaign is pending" in response.content.decode()
    recipient.refresh_from_db()
    assert recipient.campaign_id == pending.pk
    assert frozen.recipients.count() == 3


@pytest.mark.parametrize("status", NOT_PENDING)
def test_recipient_add_rejected_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)

    response = admin_client.post(
        reverse("admin:campaigns_recipient_add"), recipient_post(campaign, "added@example.com")
    )

    assert response.status_code == 200
    assert "only while their campaign is pending" in response.content.decode()
    assert campaign.recipients.count() == 3
    assert not Recipient.objects.filter(email="added@example.com").exists()


def test_recipient_add_saved_when_pending(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()

    response = admin_client.post(
        reverse("admin:campaigns_recipient_add"), recipient_post(campaign, "added@example.com")
    )

    assert response.status_code == 302
    added = campaign.recipients.get(email="added@example.com")
    assert added.status == Recipient.Status.QUEUED


@pytest.mark.parametrize("status", NOT_PENDING)
def test_recipient_delete_denied_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = campaign_in_status(make_campaign, status)
    recipient = first_recipient(campaign)
    url = reverse("admin:campaigns_recipient_delete", args=[recipient.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert Recipient.objects.filter(pk=recipient.pk).exists()


def test_recipient_bulk_delete_denied_when_not_pending(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = campaign_in_status(make_campaign, "completed")
    ids = [str(pk) for pk in campaign.recipients.values_list("id", flat=True)]

    admin_client.post(
        reverse("admin:campaigns_recipient_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert campaign.recipients.count() == 3


def test_recipient_delete_allowed_when_pending(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    recipient = first_recipient(campaign)
    url = reverse("admin:campaigns_recipient_delete", args=[recipient.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Recipient.objects.filter(pk=recipient.pk).exists()


def test_recipient_add_uses_the_form_cleaning(
    admin_client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    data = {**recipient_post(campaign, "added@Example.COM"), "phone_number": "(202) 555-0177"}

    admin_client.post(reverse("admin:campaigns_recipient_add"), data)
    rejected = admin_client.post(
        reverse("admin:campaigns_recipient_add"),
        {**recipient_post(campaign, "other@example.com"), "phone_number": "4.47700E+11"},
    )

    added = campaign.recipients.get(email="added@example.com")
    assert added.phone_number == "+12025550177"
    assert "scientific notation" in rejected.content.decode()
    assert not campaign.recipients.filter(email="other@example.com").exists()
