"""The campaign list: newest first, paginated, with progress and counts per campaign."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Recipient, mark_suppressed
from campaigns.views import CAMPAIGNS_PER_PAGE
from tests.outcomes import move_to_status, set_outcome

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

INDEX_URL = reverse("campaigns:index")


def summary_rows(html: str) -> list[str]:
    """Return the list's rows in page order, one `<tr>…</tr>` string per campaign."""
    return re.findall(r'<tr id="campaign_\d+_summary"[^>]*>.*?</tr>', html, flags=re.DOTALL)


def summary_row(html: str, campaign: Campaign) -> str:
    start = html.index(f'<tr id="{campaign.dom_id}_summary"')
    return html[start : html.index("</tr>", start)]


def row_counts(row: str) -> list[tuple[str, str]]:
    """Return each `data-count` element of the row as (name, number), in page order."""
    return re.findall(r'data-count="(\w+)">(\d+)<', row)


def progress_attributes(row: str) -> dict[str, str]:
    """The attributes of the row's only `<progress>` element."""
    [tag] = re.findall(r"<progress\b[^>]*>", row)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


def make_dated_campaigns(make_campaign: MakeCampaign, count: int) -> list[Campaign]:
    """Create `count` campaigns, one minute apart, oldest first."""
    start = timezone.now() - timedelta(days=1)
    return [
        make_campaign(
            name=f"Campaign {n:02d}", recipients=[], created_at=start + timedelta(minutes=n)
        )
        for n in range(count)
    ]


def test_index_shows_empty_state(client: Client) -> None:
    response = client.get(INDEX_URL)
    html = response.content.decode()

    assert response.status_code == 200
    assert "No campaigns yet." in html
    assert f'href="{reverse("campaigns:create")}"' in html
    assert summary_rows(html) == []


def test_index_lists_newest_first(client: Client, make_campaign: MakeCampaign) -> None:
    oldest, middle, newest = make_dated_campaigns(make_campaign, 3)

    html = client.get(INDEX_URL).content.decode()

    rows = summary_rows(html)
    assert len(rows) == 3
    assert newest.name in rows[0]
    assert middle.name in rows[1]
    assert oldest.name in rows[2]
    assert "No campaigns yet." not in html


def test_index_orders_same_time_by_id(client: Client, make_campaign: MakeCampaign) -> None:
    created_at = timezone.now()
    first = make_campaign(name="First", recipients=[], created_at=created_at)
    second = make_campaign(name="Second", recipients=[], created_at=created_at)

    rows = summary_rows(client.get(INDEX_URL).content.decode())

    assert second.dom_id in rows[0]
    assert first.dom_id in rows[1]


def test_index_paginates(client: Client, make_campaign: MakeCampaign) -> None:
    campaigns = make_dated_campaigns(make_campaign, CAMPAIGNS_PER_PAGE + 3)
    newest_first = campaigns[::-1]

    first_page = client.get(INDEX_URL).content.decode()
    second_page = client.get(INDEX_URL, {"page": 2}).content.decode()

    assert CAMPAIGNS_PER_PAGE == 20
    first_rows = summary_rows(first_page)
    second_rows = summary_rows(second_page)
    assert len(first_rows) == 20
    assert len(second_rows) == 3
    assert newest_first[0].name in first_rows[0]
    assert newest_first[19].name in first_rows[19]
    assert newest_first[20].name in second_rows[0]
    assert newest_first[22].name in second_rows[2]
    assert "Page 1 of 2" in first_page
    assert 'href="?page=2"' in first_page
    assert "Page 2 of 2" in second_page
    assert 'href="?page=1"' in second_page


def test_index_single_page_has_no_pagination(client: Client, make_campaign: MakeCampaign) -> None:
    make_dated_campaigns(make_campaign, CAMPAIGNS_PER_PAGE)

    html = client.get(INDEX_URL).content.decode()

    assert len(summary_rows(html)) == 20
    assert 'aria-label="Pagination"' not in html


@pytest.mark.parametrize(
    ("page", "shown_page", "row_count"),
    [("99", "Page 2 of 2", 1), ("abc", "Page 1 of 2", 20)],
)
def test_index_out_of_range_page(
    client: Client, make_campaign: MakeCampaign, page: str, shown_page: str, row_count: int
) -> None:
    # Paginator.get_page serves the last page for a number past the end and
    # the first page for anything that is not a number.
    make_dated_campaigns(make_campaign, CAMPAIGNS_PER_PAGE + 1)

    response = client.get(INDEX_URL, {"page": page})
    html = response.content.decode()

    assert response.status_code == 200
    assert shown_page in html
    assert len(summary_rows(html)) == row_count


def test_index_shows_counts_and_status(client: Client, make_campaign: MakeCampaign) -> None:
    busy = make_campaign(name="Busy")
    busy.start()
    first, second, _third = busy.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")
    fresh = make_campaign(name="Fresh", recipients=[{"email": "ada@example.com"}])

    html = client.get(INDEX_URL).content.decode()

    busy_row = summary_row(html, busy)
    fresh_row = summary_row(html, fresh)
    assert row_counts(busy_row) == [("sent", "1"), ("failed", "1"), ("total", "3")]
    assert row_counts(fresh_row) == [("sent", "0"), ("failed", "0"), ("total", "1")]
    assert 'data-status="processing">Processing<' in busy_row
    assert 'data-status="pending">Pending<' in fresh_row
    assert f'href="{busy.get_absolute_url()}"' in busy_row
    assert ">Busy</a>" in busy_row


def test_index_shows_suppressed_count(client: Client, make_campaign: MakeCampaign) -> None:
    busy = make_campaign(name="Busy")
    busy.start()
    first, second, third = busy.recipients.order_by("id")
    set_outcome(first, Recipient.Status.FAILED, "Mailbox full")
    assert mark_suppressed(busy.pk, [second.pk, third.pk], "unsubscribed") == 2
    quiet = make_campaign(name="Quiet")
    quiet.start()
    set_outcome(quiet.recipients.order_by("id")[0], Recipient.Status.FAILED, "Mailbox full")

    html = client.get(INDEX_URL).content.decode()

    # It should show the suppressed count under the failed count, next to sent.
    busy_row = summary_row(html, busy)
    assert row_counts(busy_row) == [
        ("sent", "0"),
        ("failed", "1"),
        ("suppressed", "2"),
        ("total", "3"),
    ]
    assert re.search(r'<span data-count="suppressed">2</span> suppressed</span>\s*</td>', busy_row)
    # It should leave the count out of a campaign with no suppressed recipient.
    quiet_row = summary_row(html, quiet)
    assert row_counts(quiet_row) == [("sent", "0"), ("failed", "1"), ("total", "3")]
    assert "suppressed" not in quiet_row


@pytest.mark.parametrize(
    ("status", "label"),
    [("paused", "Paused"), ("cancelled", "Cancelled"), ("completed", "Completed")],
)
def test_index_shows_later_statuses(
    client: Client, make_campaign: MakeCampaign, status: str, label: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    html = client.get(INDEX_URL).content.decode()

    assert f'data-status="{status}">{label}<' in summary_row(html, campaign)


def test_index_escapes_names(client: Client, make_campaign: MakeCampaign) -> None:
    make_campaign(name="<script>alert(1)</script>", recipients=[])

    html = client.get(INDEX_URL).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html


def test_index_shows_progress(client: Client, make_campaign: MakeCampaign) -> None:
    busy = make_campaign(name="Busy")
    busy.start()
    first, second, _third = busy.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")
    empty = make_campaign(name="Empty", recipients=[])

    html = client.get(INDEX_URL).content.decode()

    # It should draw the processed share with <progress> and repeat it as text.
    busy_row = summary_row(html, busy)
    assert progress_attributes(busy_row) == {
        "class": "progress",
        "value": "2",
        "max": "3",
        "aria-label": "Recipients processed in Busy",
    }
    assert re.search(r"data-progress-percent>66%</span>", busy_row)
    # It should give an empty campaign a bar at 0 of 1 rather than a max of 0.
    empty_row = summary_row(html, empty)
    assert progress_attributes(empty_row)["value"] == "0"
    assert progress_attributes(empty_row)["max"] == "1"
    assert re.search(r"data-progress-percent>0%</span>", empty_row)
    # It should need no inline style, so a strict Content Security Policy allows the page.
    assert "style=" not in busy_row


def test_index_rows_carry_read_version(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    before = Campaign.objects.with_progress().get(pk=campaign.pk).read_version
    assert before is not None

    html = client.get(INDEX_URL).content.decode()

    match = re.search(r'data-version="(\d+)"', summary_row(html, campaign))
    assert match is not None
    # It should carry the version of the page's read, never older than a read before it.
    assert int(match.group(1)) >= before


def test_index_stream_source_names_page_campaigns(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaigns = make_dated_campaigns(make_campaign, CAMPAIGNS_PER_PAGE + 2)
    newest_first = campaigns[::-1]

    first_page = client.get(INDEX_URL).content.decode()
    again = client.get(INDEX_URL).content.decode()
    second_page = client.get(INDEX_URL, {"page": 2}).content.decode()

    def stream_source(html: str) -> tuple[str, str]:
        sources = re.findall(r'<turbo-stream-source id="([^"]+)" src="([^"]+)">', html)
        assert len(sources) == 1, sources
        return sources[0]

    # It should follow the campaigns of the page shown, in page order.
    _, first_src = stream_source(first_page)
    expected = ",".join(str(c.pk) for c in newest_first[:CAMPAIGNS_PER_PAGE])
    assert first_src == f"{reverse('live:index_stream')}?ids={expected}"
    _, second_src = stream_source(second_page)
    expected = ",".join(str(c.pk) for c in newest_first[CAMPAIGNS_PER_PAGE:])
    assert second_src == f"{reverse('live:index_stream')}?ids={expected}"
    # It should get a new element id on every render, so a morphing refresh reconnects it.
    assert stream_source(first_page)[0] != stream_source(again)[0]


def test_index_without_campaigns_has_no_stream(client: Client) -> None:
    html = client.get(INDEX_URL).content.decode()

    assert "<turbo-stream-source" not in html
