"""The admin changelists for campaigns and recipients, with their filters and search."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from tests.outcomes import set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

CAMPAIGNS_URL = reverse("admin:campaigns_campaign_changelist")
RECIPIENTS_URL = reverse("admin:campaigns_recipient_changelist")


@pytest.fixture
def campaigns(make_campaign: MakeCampaign) -> dict[str, Campaign]:
    """A pending and a processing campaign, each with two named recipients."""
    spring = make_campaign(
        name="Spring newsletter",
        recipients=[
            {"name": "Ada Lovelace", "email": "ada@example.com"},
            {"name": "Grace Hopper", "phone_number": "+12025550101"},
        ],
    )
    autumn = make_campaign(
        name="Autumn sale",
        recipients=[
            {"name": "Alan Turing", "email": "alan@example.org"},
            {"name": "Edsger Dijkstra", "phone_number": "+31205550101"},
        ],
    )
    assert autumn.start()
    turing, _dijkstra = autumn.recipients.order_by("id")
    assert set_outcome(turing, Recipient.Status.SENT)
    return {"spring": spring, "autumn": autumn}


def get(client: Client, url: str, query: dict[str, str]) -> str:
    response = client.get(url, query)
    assert response.status_code == 200
    return response.content.decode()


def test_campaigns_filter_by_status(admin_client: Client, campaigns: dict[str, Campaign]) -> None:
    html = get(admin_client, CAMPAIGNS_URL, {"status__exact": "pending"})

    assert "Spring newsletter" in html
    assert "Autumn sale" not in html


def test_campaigns_filter_processing(admin_client: Client, campaigns: dict[str, Campaign]) -> None:
    html = get(admin_client, CAMPAIGNS_URL, {"status__exact": "processing"})

    assert "Autumn sale" in html
    assert "Spring newsletter" not in html


def test_campaigns_search_by_name(admin_client: Client, campaigns: dict[str, Campaign]) -> None:
    html = get(admin_client, CAMPAIGNS_URL, {"q": "autumn"})

    assert "Autumn sale" in html
    assert "Spring newsletter" not in html


def test_campaign_change_page_lists_recipients(
    admin_client: Client, campaigns: dict[str, Campaign]
) -> None:
    url = reverse("admin:campaigns_campaign_change", args=[campaigns["autumn"].pk])

    html = get(admin_client, url, {})

    assert "Alan Turing" in html
    assert "Edsger Dijkstra" in html
    assert "Ada Lovelace" not in html


def test_recipients_filter_by_status(admin_client: Client, campaigns: dict[str, Campaign]) -> None:
    html = get(admin_client, RECIPIENTS_URL, {"status__exact": "sent"})

    assert "Alan Turing" in html
    assert "Edsger Dijkstra" not in html
    assert "Ada Lovelace" not in html


def test_recipients_filter_by_campaign_status(
    admin_client: Client, campaigns: dict[str, Campaign]
) -> None:
    html = get(admin_client, RECIPIENTS_URL, {"campaign__status__exact": "pending"})

    assert "Ada Lovelace" in html
    assert "Grace Hopper" in html
    assert "Alan Turing" not in html


@pytest.mark.parametrize(
    ("query", "found", "absent"),
    [
        ("ada@example", "Ada Lovelace", "Alan Turing"),
        ("+3120", "Edsger Dijkstra", "Grace Hopper"),
        ("Hopper", "Grace Hopper", "Ada Lovelace"),
        ("Autumn", "Alan Turing", "Ada Lovelace"),
    ],
    ids=["email", "phone", "name", "campaign-name"],
)
def test_recipients_search(
    admin_client: Client, campaigns: dict[str, Campaign], query: str, found: str, absent: str
) -> None:
    html = get(admin_client, RECIPIENTS_URL, {"q": query})

    assert found in html
    assert absent not in html


def test_admin_requires_login(client: Client, campaigns: dict[str, Campaign]) -> None:
    response = client.get(CAMPAIGNS_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
