"""The attempts of one recipient: the turbo-frame that a row's <details> loads lazily."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, DeliveryAttempt, Recipient

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

STARTED_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

# The page separates an attempt's start and finish times with an en dash.
EN_DASH = "\u2013"


def attempts_url(recipient: Recipient) -> str:
    return reverse("campaigns:attempts", args=[recipient.campaign_id, recipient.pk])


def add_attempt(recipient: Recipient, number: int, outcome: str, **fields: str) -> None:
    started_at = STARTED_AT + timedelta(minutes=number)
    DeliveryAttempt.objects.create(
        recipient=recipient,
        campaign_id=recipient.campaign_id,
        number=number,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=2),
        outcome=outcome,
        **fields,
    )


def listed_attempts(html: str) -> list[str]:
    """The text of each listed attempt, in page order, with whitespace collapsed."""
    items = re.findall(r"<li data-attempt-outcome=\"\w+\">(.*?)</li>", html, flags=re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in items]


@pytest.fixture
def recipient(make_campaign: MakeCampaign) -> Recipient:
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}])
    assert campaign.start()
    return campaign.recipients.get()


def test_attempts_listed_in_order(client: Client, recipient: Recipient) -> None:
    # Created out of order, as a reclaim after a lost lease can record them.
    add_attempt(recipient, 3, "sent", provider_message_id="msg-42")
    add_attempt(recipient, 1, "transient_error", error="connection timed out")
    add_attempt(
        recipient, 2, "lease_expired", error="claim expired: the worker stopped before recording"
    )

    response = client.get(attempts_url(recipient))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'data-attempt-outcome="(\w+)"', html) == [
        "transient_error",
        "lease_expired",
        "sent",
    ]
    assert listed_attempts(html) == [
        f"#1 Transient error · 03:05:05{EN_DASH}03:05:07 UTC connection timed out",
        f"#2 Lease expired · 03:06:05{EN_DASH}03:06:07 UTC "
        "claim expired: the worker stopped before recording",
        f"#3 Sent · 03:07:05{EN_DASH}03:07:07 UTC · id msg-42",
    ]


def test_attempts_in_matching_frame(client: Client, recipient: Recipient) -> None:
    add_attempt(recipient, 1, "sent")

    html = client.get(attempts_url(recipient)).content.decode()

    # Turbo replaces the lazy frame only with a frame of the same id.
    assert html.strip().startswith(f'<turbo-frame id="{recipient.dom_id}_attempts">')
    assert html.strip().endswith("</turbo-frame>")
    assert "<html" not in html


def test_attempts_empty(client: Client, recipient: Recipient) -> None:
    html = client.get(attempts_url(recipient)).content.decode()

    assert "No attempt recorded yet." in html
    assert "data-attempt-outcome" not in html


def test_attempts_of_recipient_only(
    client: Client, recipient: Recipient, make_campaign: MakeCampaign
) -> None:
    other_campaign = make_campaign(name="Other", recipients=[{"email": "grace@example.com"}])
    other = other_campaign.recipients.get()
    add_attempt(recipient, 1, "sent")
    add_attempt(other, 1, "permanent_error", error="Mailbox full")

    html = client.get(attempts_url(recipient)).content.decode()

    assert re.findall(r'data-attempt-outcome="(\w+)"', html) == ["sent"]
    assert "Mailbox full" not in html


def test_attempts_escape_error(client: Client, recipient: Recipient) -> None:
    add_attempt(recipient, 1, "permanent_error", error="<script>alert(1)</script>")

    html = client.get(attempts_url(recipient)).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_attempts_other_campaign_is_404(
    client: Client, recipient: Recipient, make_campaign: MakeCampaign
) -> None:
    other_campaign = make_campaign(name="Other", recipients=[])
    add_attempt(recipient, 1, "sent")

    response = client.get(reverse("campaigns:attempts", args=[other_campaign.pk, recipient.pk]))

    assert response.status_code == 404


@pytest.mark.parametrize("unknown", ["campaign", "recipient"])
def test_attempts_unknown_is_404(client: Client, recipient: Recipient, unknown: str) -> None:
    campaign_id = 987654321 if unknown == "campaign" else recipient.campaign_id
    recipient_id = 987654321 if unknown == "recipient" else recipient.pk

    response = client.get(reverse("campaigns:attempts", args=[campaign_id, recipient_id]))

    assert response.status_code == 404
