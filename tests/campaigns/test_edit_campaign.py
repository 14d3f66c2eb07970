"""Editing a pending campaign and its recipients. A dispatched campaign is read-only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from tests.campaigns.campaign_form import existing_rows, field_html, form_data
from tests.outcomes import move_to_status

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

READ_ONLY_MESSAGES = {
    "processing": "This campaign was already dispatched; it is read-only.",
    "paused": "This campaign was already dispatched; it is read-only.",
    "completed": "This campaign was already dispatched; it is read-only.",
    "cancelled": "This campaign was cancelled, so it can no longer be edited or deleted.",
}

DISPATCHED_STATUSES = ["processing", "paused", "completed", "cancelled"]


def edit_url(campaign: Campaign) -> str:
    return reverse("campaigns:edit", args=[campaign.pk])


def test_edit_page_shows_existing_rows(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada, *_others = campaign.recipients.order_by("id")

    response = client.get(edit_url(campaign))
    html = response.content.decode()

    assert response.status_code == 200
    assert 'name="recipients-TOTAL_FORMS" value="3"' in html
    assert 'name="recipients-INITIAL_FORMS" value="3"' in html
    assert f'name="recipients-0-id" value="{ada.pk}"' in html
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")
    assert 'value="+12025550101"' in field_html(html, "recipients-1-phone_number")
    assert 'value="Alan"' in field_html(html, "recipients-2-name")
    assert 'value="Spring launch"' in field_html(html, "name")


def test_edit_saves_all_changes_at_once(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada, grace, alan = campaign.recipients.order_by("id")
    rows = existing_rows(campaign)
    rows[0]["email"] = "Ada.Lovelace@Example.com"
    rows[1]["DELETE"] = True
    rows.append({"name": "Edsger", "phone_number": "+31 20 555 0101"})

    response = client.post(edit_url(campaign), form_data("Autumn launch", rows, initial_forms=3))

    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    campaign.refresh_from_db()
    assert campaign.name == "Autumn launch"
    recipients = {r.pk: r for r in campaign.recipients.all()}
    assert recipients[ada.pk].email == "Ada.Lovelace@example.com"
    assert grace.pk not in recipients
    assert recipients[alan.pk].email == "alan@example.com"
    assert recipients[alan.pk].phone_number == "+12025550102"
    added = [r for pk, r in recipients.items() if pk not in {ada.pk, alan.pk}]
    assert [(r.name, r.phone_number) for r in added] == [("Edsger", "+31205550101")]


def test_edit_shows_success_message(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    data = form_data("Autumn launch", existing_rows(campaign), initial_forms=3)

    response = client.post(edit_url(campaign), data, follow=True)

    assert "Campaign “Autumn launch” saved." in response.content.decode()


def test_edit_error_changes_nothing(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows[1]["DELETE"] = True
    rows[2]["email"] = "not an email"

    response = client.post(edit_url(campaign), form_data("Renamed", rows, initial_forms=3))

    html = response.content.decode()
    assert response.status_code == 422
    assert "is not a valid email address." in field_html(html, "recipients-2-email")
    assert 'value="not an email"' in field_html(html, "recipients-2-email")
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch"
    assert campaign.recipients.count() == 3


def test_edit_can_delete_then_reuse_email(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows[0]["DELETE"] = True
    rows.append({"name": "New Ada", "email": "ADA@example.com"})

    response = client.post(edit_url(campaign), form_data("Spring launch", rows, initial_forms=3))

    assert response.status_code == 303
    assert list(campaign.recipients.values_list("name", "email")) == [
        ("Grace", ""),
        ("Alan", "alan@example.com"),
        ("New Ada", "ADA@example.com"),
    ]


def test_edit_moves_email_to_new_row(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows[0]["email"] = "ada.lovelace@example.com"
    rows.append({"name": "Other Ada", "email": "ada@example.com"})

    response = client.post(edit_url(campaign), form_data("Spring launch", rows, initial_forms=3))

    assert response.status_code == 303
    assert list(campaign.recipients.values_list("name", "email")) == [
        ("Ada", "ada.lovelace@example.com"),
        ("Grace", ""),
        ("Alan", "alan@example.com"),
        ("Other Ada", "ada@example.com"),
    ]


def test_edit_rejects_duplicate_of_unchanged_row(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows.append({"name": "Ada again", "email": "ADA@example.com"})

    response = client.post(edit_url(campaign), form_data("Spring launch", rows, initial_forms=3))

    html = response.content.decode()
    assert response.status_code == 422
    assert "Duplicate email: row 1 has it too." in field_html(html, "recipients-3-email")
    assert "Constraint “" not in html
    assert campaign.recipients.count() == 3


def test_duplicate_message_skips_deleted_rows(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows[0]["DELETE"] = True
    rows.append({"name": "Alan again", "email": "alan@example.com"})

    response = client.post(edit_url(campaign), form_data("Spring launch", rows, initial_forms=3))

    # Row 1 is hidden once marked for deletion, so Alan is shown as row 2.
    html = response.content.decode()
    assert response.status_code == 422
    assert "Duplicate email: row 2 has it too." in field_html(html, "recipients-3-email")


@pytest.mark.parametrize("status", DISPATCHED_STATUSES)
def test_dispatched_edit_page_redirects(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    response = client.get(edit_url(campaign), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert READ_ONLY_MESSAGES[status] in response.content.decode()


@pytest.mark.parametrize("status", DISPATCHED_STATUSES)
def test_dispatched_edit_post_changes_nothing(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    before = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "status"))
    rows = existing_rows(campaign)
    rows[0]["email"] = "changed@example.com"
    rows[1]["DELETE"] = True
    rows.append({"email": "added@example.com"})

    response = client.post(
        edit_url(campaign), form_data("Renamed", rows, initial_forms=3), follow=True
    )

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert READ_ONLY_MESSAGES[status] in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch"
    assert campaign.status == status
    after = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "status"))
    assert after == before


def test_edit_unknown_campaign_not_found(client: Client) -> None:
    response = client.get(reverse("campaigns:edit", args=[999999]))

    assert response.status_code == 404


def test_edit_swap_emails_rejected_cleanly(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    rows = existing_rows(campaign)
    rows[0]["email"], rows[2]["email"] = rows[2]["email"], rows[0]["email"]

    response = client.post(edit_url(campaign), form_data("Swapped", rows, initial_forms=3))

    # The unique index rejects the first row's new value while the other row
    # still has it, so the whole save rolls back with a message.
    assert response.status_code == 422
    assert "save the change in two steps" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch"
    emails = list(campaign.recipients.order_by("id").values_list("email", flat=True))
    assert emails == ["ada@example.com", "", "alan@example.com"]
