"""The campaign page's recipients table: pages of 50, a status filter and a search box."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from campaigns.models import Campaign, Recipient
from campaigns.views import RECIPIENTS_PER_PAGE

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]


def add_recipients(campaign: Campaign, count: int, status: str = "queued") -> list[Recipient]:
    """Insert `count` recipients in one statement; returns them in id order."""
    start = campaign.recipients.count()
    # A recipient in flight needs a lease, as a CHECK constraint requires.
    lease = {"claim_token": uuid.uuid4(), "lease_expires_at": timezone.now()}
    extra = lease if status == Recipient.Status.IN_FLIGHT else {}
    rows = [
        Recipient(
            campaign=campaign,
            name=f"User {n}",
            email=f"user{n}@example.com",
            status=status,
            **extra,
        )
        for n in range(start, start + count)
    ]
    return Recipient.objects.bulk_create(rows)


def get(client: Client, campaign: Campaign, **params: str | int) -> tuple[int, str]:
    response = client.get(campaign.get_absolute_url(), params)
    return response.status_code, response.content.decode()


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="recipient_(\d+)"', html)]


def page_links(html: str) -> dict[str, str]:
    """Return the pagination links' hrefs by their text."""
    nav = re.search(r'<nav [^>]*aria-label="Recipient pages">(.*?)</nav>', html, flags=re.DOTALL)
    assert nav is not None, "no pagination links"
    return {text: href for href, text in re.findall(r'href="([^"]*)">([^<]*)</a>', nav.group(1))}


def test_first_page_has_fifty_rows(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    recipients = add_recipients(campaign, 120)

    status, html = get(client, campaign)

    assert status == 200
    assert RECIPIENTS_PER_PAGE == 50
    assert row_ids(html) == [r.pk for r in recipients[:50]]
    assert "Recipients 1\N{EN DASH}50 of 120 · page 1 of 3" in html
    assert page_links(html) == {"Next →": "?page=2", "Last »": "?page=3"}


def test_last_page_has_remainder(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    recipients = add_recipients(campaign, 120)

    status, html = get(client, campaign, page=3)

    assert status == 200
    assert row_ids(html) == [r.pk for r in recipients[100:]]
    assert page_links(html) == {"« First": "?page=1", "← Previous": "?page=2"}


@pytest.mark.parametrize("page", ["99", "1000000000000000000000", "-1", "0"])
def test_out_of_range_page_shows_last(
    client: Client, make_campaign: MakeCampaign, page: str
) -> None:
    campaign = make_campaign(recipients=[])
    recipients = add_recipients(campaign, 60)

    status, html = get(client, campaign, page=page)

    assert status == 200
    assert row_ids(html) == [r.pk for r in recipients[50:]]


@pytest.mark.parametrize("page", ["abc", "", "1.5", "<b>"])
def test_invalid_page_shows_first(client: Client, make_campaign: MakeCampaign, page: str) -> None:
    campaign = make_campaign(recipients=[])
    recipients = add_recipients(campaign, 60)

    status, html = get(client, campaign, page=page)

    assert status == 200
    assert row_ids(html) == [r.pk for r in recipients[:50]]
    assert "<b>" not in html


def test_status_filter_lists_one_status(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    add_recipients(campaign, 30, status=Recipient.Status.SENT)
    failed = add_recipients(campaign, 70, status=Recipient.Status.FAILED)
    add_recipients(campaign, 5, status=Recipient.Status.SENT)

    status, html = get(client, campaign, status="failed", page=2)

    assert status == 200
    assert row_ids(html) == [r.pk for r in failed[50:]]
    assert "Recipients 51\N{EN DASH}70 of 70 · page 2 of 2" in html
    # The filter survives paging, and the form shows the chosen status.
    assert page_links(html) == {
        "« First": "?status=failed&amp;page=1",
        "← Previous": "?status=failed&amp;page=1",
    }
    assert '<option value="failed" selected>Failed</option>' in html


@pytest.mark.parametrize("value", Recipient.Status.values)
def test_every_status_accepted(client: Client, make_campaign: MakeCampaign, value: str) -> None:
    campaign = make_campaign(recipients=[])
    for each_status in Recipient.Status.values:
        add_recipients(campaign, 1, status=each_status)

    status, html = get(client, campaign, status=value)

    assert status == 200
    assert re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', html) == [value]


@pytest.mark.parametrize("value", ["bogus", "QUEUED", "<script>x</script>"])
def test_unknown_status_rejected(client: Client, make_campaign: MakeCampaign, value: str) -> None:
    campaign = make_campaign()

    status, html = get(client, campaign, status=value)

    assert status == 400
    assert row_ids(html) == []
    assert "is not a recipient status. Choose one from the list." in html
    assert "Fix the filter above to list recipients." in html
    assert "<script>x</script>" not in html


def test_search_matches_any_field(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "Ada Lovelace", "email": "ada@example.com"},
            {"name": "Grace", "email": "hopper@navy.example"},
            {"name": "Alan", "phone_number": "+12025550102"},
            {"name": "Edsger", "email": "edsger@example.com"},
        ]
    )
    ada, grace, alan, edsger = campaign.recipients.order_by("id")

    assert row_ids(get(client, campaign, q="LOVELACE")[1]) == [ada.pk]
    assert row_ids(get(client, campaign, q="Navy.Ex")[1]) == [grace.pk]
    assert row_ids(get(client, campaign, q="5550102")[1]) == [alan.pk]
    assert row_ids(get(client, campaign, q="  gRACE ")[1]) == [grace.pk]
    assert row_ids(get(client, campaign, q="example")[1]) == [ada.pk, grace.pk, edsger.pk]


def test_search_combines_with_status(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    add_recipients(campaign, 3, status=Recipient.Status.SENT)
    failed = add_recipients(campaign, 3, status=Recipient.Status.FAILED)

    status, html = get(client, campaign, status="failed", q="user4")

    assert status == 200
    assert row_ids(html) == [failed[1].pk]


def test_search_keeps_parameters_in_links(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    add_recipients(campaign, 60)

    _status, html = get(client, campaign, q="user", status="queued")

    assert page_links(html)["Next →"] == "?q=user&amp;status=queued&amp;page=2"


@pytest.mark.parametrize("text", ["%", "_", "50%_off"])
def test_search_wildcards_match_literally(
    client: Client, make_campaign: MakeCampaign, text: str
) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "Plain", "email": "plain@example.com"},
            {"name": "Sale 50%_off", "email": "sale@example.com"},
        ]
    )
    _plain, sale = campaign.recipients.order_by("id")

    status, html = get(client, campaign, q=text)

    assert status == 200
    assert row_ids(html) == [sale.pk]


def test_search_escapes_html(client: Client, make_campaign: MakeCampaign) -> None:
    script = '"><script>alert(1)</script>'
    campaign = make_campaign(recipients=[{"name": script, "email": "ada@example.com"}])
    add_recipients(campaign, 60)

    status, html = get(client, campaign, q=script)

    assert status == 200
    assert len(row_ids(html)) == 1
    assert script not in html
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_search_without_match(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    status, html = get(client, campaign, q="nobody")

    assert status == 200
    assert row_ids(html) == []
    assert "No recipients match this filter." in html
    assert 'aria-label="Recipient pages"' not in html


def test_too_long_search_rejected(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    status, html = get(client, campaign, q="x" * 201)

    assert status == 400
    assert row_ids(html) == []


@pytest.mark.parametrize("params", [{}, {"status": "queued"}, {"q": "user"}, {"page": "9999"}])
def test_query_count_bounded(
    client: Client,
    make_campaign: MakeCampaign,
    django_assert_max_num_queries: DjangoAssertNumQueries,
    params: dict[str, str],
) -> None:
    small = make_campaign(name="Small", recipients=[])
    add_recipients(small, 3)
    large = make_campaign(name="Large", recipients=[])
    add_recipients(large, 500)

    # The bound is the same for 3 and 500 recipients, so no query runs per row.
    for campaign in (small, large):
        with django_assert_max_num_queries(4):
            status, _html = get(client, campaign, **params)
        assert status == 200
