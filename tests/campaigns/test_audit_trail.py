"""The audit trail: each campaign action, through its real view, records one event.

An action that a view rejects records nothing, and events outlive the
campaign and the user that they name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from audit.models import Action, AuditEvent, mask_address, record
from campaigns.models import Campaign, Recipient
from tests.campaigns.campaign_form import existing_rows, form_data
from tests.outcomes import move_to_status, set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]


def events(campaign: Campaign | None = None) -> list[tuple[str, str, str]]:
    """Return (action, actor name, detail) of each event of `campaign`, or of all, oldest first."""
    rows = AuditEvent.objects.order_by("created_at", "id")
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    return list(rows.values_list("action", "actor_name", "detail"))


def post(client: Client, name: str, campaign: Campaign, data: Any = None) -> Any:
    return client.post(reverse(f"campaigns:{name}", args=[campaign.pk]), data or {})


def test_create_records_created(client: Client, operator: Any) -> None:
    data = form_data("Spring launch", [{"email": "ada@example.com"}])

    response = client.post(reverse("campaigns:create"), data)

    assert response.status_code == 303
    campaign = Campaign.objects.get()
    event = AuditEvent.objects.get()
    assert event.campaign == campaign
    assert event.campaign_name == "Spring launch"
    assert event.action == Action.CREATED
    assert event.actor == operator
    assert event.actor_name == "operator"


def test_invalid_create_records_nothing(client: Client) -> None:
    response = client.post(reverse("campaigns:create"), form_data("", [{"email": "x"}]))

    assert response.status_code == 422
    assert events() == []


def test_edit_records_edited(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    data = form_data("Renamed", existing_rows(campaign), initial_forms=3)

    response = post(client, "edit", campaign, data)

    assert response.status_code == 303
    assert events(campaign) == [("edited", "operator", "")]


def test_edit_of_dispatched_campaign_records_nothing(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    data = form_data("Renamed", existing_rows(campaign), initial_forms=3)
    move_to_status(campaign, Campaign.Status.PROCESSING)

    post(client, "edit", campaign, data)

    assert events() == []


def test_dispatch_records_dispatched(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    post(client, "dispatch", campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert events(campaign) == [("dispatched", "operator", "")]


def test_dispatch_without_content_records_nothing(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(email_subject="", email_text="", sms_text="")

    response = post(client, "dispatch", campaign, {})

    campaign.refresh_from_db()
    assert response.status_code == 303
    assert campaign.status == Campaign.Status.PENDING
    assert events() == []


@pytest.mark.parametrize(
    ("view", "start", "action"),
    [
        ("pause", "processing", "paused"),
        ("resume", "paused", "resumed"),
        ("cancel", "processing", "cancelled"),
    ],
)
def test_operator_action_records_once(
    client: Client, make_campaign: MakeCampaign, view: str, start: str, action: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, start)

    post(client, view, campaign)
    post(client, view, campaign)

    # The second request is rejected: the campaign left `start` with the first.
    assert events(campaign) == [(action, "operator", "")]


def test_resume_that_completes_says_so(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PAUSED)
    for recipient in campaign.recipients.all():
        assert set_outcome(recipient, Recipient.Status.SENT)

    post(client, "resume", campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert events(campaign) == [
        ("resumed", "operator", "nothing was left to deliver, so it completed")
    ]


def test_retry_failed_records_count(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    assert campaign.start()
    first, *others = campaign.recipients.order_by("id")
    assert set_outcome(first, Recipient.Status.FAILED, transient=True)
    for recipient in others:
        assert set_outcome(recipient, Recipient.Status.SENT)
    assert campaign.complete()

    post(client, "retry_failed", campaign)
    post(client, "retry_failed", campaign)

    assert events(campaign) == [("retried_failed", "operator", "1 failed recipient queued again")]


def test_duplicate_records_on_copy(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    post(client, "duplicate", campaign)

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert events(campaign) == []
    assert events(copy) == [("duplicated", "operator", f"duplicated from #{campaign.pk}")]


def test_delete_keeps_events_with_name(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name="Spring launch")
    pk = campaign.pk
    post(client, "edit", campaign, form_data("Spring launch", existing_rows(campaign), 3))

    response = post(client, "delete", campaign)

    assert response.status_code == 303
    assert not Campaign.objects.filter(pk=pk).exists()
    kept = AuditEvent.objects.order_by("created_at", "id")
    assert [event.action for event in kept] == ["edited", "deleted"]
    assert [event.campaign_id for event in kept] == [None, None]
    assert [event.campaign_name for event in kept] == ["Spring launch", "Spring launch"]
    assert kept[1].detail == f"campaign #{pk}"
    assert kept[1].actor_name == "operator"


def test_delete_of_dispatched_campaign_records_nothing(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)

    post(client, "delete", campaign)

    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert events() == []


def test_deleted_user_keeps_actor_name(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    post(client, "dispatch", campaign)

    get_user_model().objects.filter(username="operator").delete()

    event = AuditEvent.objects.get()
    assert event.actor is None
    assert event.actor_name == "operator"
    assert event.actor_display == "operator"


def test_recipient_add_edit_delete(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(email="ada@example.com")

    client.post(
        reverse("campaigns:recipient_create", args=[campaign.pk]),
        {"name": "Edsger", "email": "edsger@example.com", "phone_number": ""},
    )
    added = campaign.recipients.get(email="edsger@example.com")
    client.post(
        reverse("campaigns:recipient_edit", args=[campaign.pk, ada.pk]),
        {"name": "Ada L.", "email": "ada@example.com", "phone_number": ""},
    )
    client.post(reverse("campaigns:recipient_delete", args=[campaign.pk, ada.pk]))

    assert events(campaign) == [
        ("recipient_added", "operator", f"recipient #{added.pk}"),
        ("recipient_edited", "operator", f"recipient #{ada.pk}"),
        ("recipient_deleted", "operator", f"recipient #{ada.pk}"),
    ]


def test_duplicate_recipient_records_nothing(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = client.post(
        reverse("campaigns:recipient_create", args=[campaign.pk]),
        {"name": "Ada again", "email": "ada@example.com", "phone_number": ""},
    )

    assert response.status_code == 422
    assert events() == []


def test_test_send_masks_address(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = post(client, "test_send", campaign, {"address": "tester@example.com"})

    assert response.status_code == 303
    assert events(campaign) == [("test_sent", "operator", "email to t…@example.com")]
    assert not AuditEvent.objects.filter(detail__contains="tester").exists()


def test_rejected_test_send_records_nothing(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)

    response = post(client, "test_send", campaign, {"address": "tester@example.com"})

    assert response.status_code == 422
    assert events() == []


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("ada@example.com", "a…@example.com"),
        ("@example.com", "…@example.com"),
        ("+12025550101", "+…01"),
        ("123", "…"),
    ],
)
def test_mask_address(address: str, masked: str) -> None:
    assert mask_address(address) == masked


def test_record_cuts_long_detail(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    event = record(campaign, Action.EDITED, None, "x" * 600)

    event.refresh_from_db()
    assert len(event.detail) == 500
    assert event.actor_name == ""
    assert event.actor_display == "system"
