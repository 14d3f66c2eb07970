"""The campaign page: header counts, progress, actions and the recipients table."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

READ_ONLY_NOTICE = "This campaign has been dispatched, so it is read-only."


def page(client: Client, campaign: Campaign) -> str:
    response = client.get(campaign.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def header_count(html: str, name: str) -> str:
    match = re.search(rf'<dd data-count="{name}"[^>]*>([^<]*)</dd>', html)
    assert match is not None, f"no {name} count in the header"
    return match.group(1)


def progress_attributes(html: str) -> tuple[str, str]:
    match = re.search(r'<progress [^>]*value="([^"]*)" max="([^"]*)"', html)
    assert match is not None, "no <progress> element with value and max"
    return match.group(1), match.group(2)


def finish(campaign: Campaign) -> None:
    for recipient in campaign.recipients.all():
        recipient.mark_sent()
    assert campaign.complete()


def test_page_shows_header_counts(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, _third = campaign.recipients.order_by("id")
    first.mark_sent()
    second.mark_failed("Mailbox full")

    html = page(client, campaign)

    assert header_count(html, "total") == "3"
    assert header_count(html, "queued") == "1"
    assert header_count(html, "sent") == "1"
    assert header_count(html, "failed") == "1"


def test_page_shows_progress(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, _third = campaign.recipients.order_by("id")
    first.mark_sent()
    second.mark_failed("Mailbox full")

    html = page(client, campaign)

    assert progress_attributes(html) == ("2", "3")
    assert "66%" in html


def test_page_progress_without_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    # A <progress> element with max="0" is invalid, so the page uses 1.
    html = page(client, make_campaign(recipients=[]))

    assert progress_attributes(html) == ("0", "1")
    assert header_count(html, "total") == "0"


def test_page_lists_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    _ada, grace, _alan = campaign.recipients.order_by("id")
    grace.mark_failed("Number not reachable")

    html = page(client, campaign)

    rows = re.findall(r'<tr id="recipient_\d+" data-status="(\w+)">', html)
    assert rows == ["queued", "failed", "queued"]
    assert "ada@example.com" in html
    assert "+12025550101" in html
    assert "Number not reachable" in html


def test_page_shows_dispatch_when_pending(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    html = page(client, campaign)

    assert f'action="{reverse("campaigns:dispatch", args=[campaign.pk])}"' in html
    assert ">Dispatch</button>" in html
    assert f'href="{reverse("campaigns:edit", args=[campaign.pk])}"' in html
    assert f'href="{reverse("campaigns:delete", args=[campaign.pk])}"' in html
    assert READ_ONLY_NOTICE not in html


@pytest.mark.parametrize("status", [Campaign.Status.PROCESSING, Campaign.Status.COMPLETED])
def test_page_read_only_when_dispatched(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    campaign.start()
    if status == Campaign.Status.COMPLETED:
        finish(campaign)

    html = page(client, campaign)

    assert READ_ONLY_NOTICE in html
    assert reverse("campaigns:dispatch", args=[campaign.pk]) not in html
    assert ">Dispatch</button>" not in html
    assert reverse("campaigns:edit", args=[campaign.pk]) not in html
    assert reverse("campaigns:delete", args=[campaign.pk]) not in html
    assert f'data-campaign-status="{status}"' in html


def test_page_escapes_user_content(client: Client, make_campaign: MakeCampaign) -> None:
    script = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    campaign = make_campaign(
        name=f"Launch {script}",
        recipients=[{"name": script, "email": "ada@example.com"}],
    )

    html = page(client, campaign)

    assert f"<title>Launch {escaped}" in html
    assert f">Launch {escaped}</h1>" in html
    assert f'<td class="cell">{escaped}</td>' in html
    assert script not in html


def test_page_unknown_campaign_not_found(client: Client) -> None:
    response = client.get(reverse("campaigns:detail", args=[999999]))

    assert response.status_code == 404
