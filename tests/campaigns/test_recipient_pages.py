"""The campaign page's recipients table: pages of 50, a status filter and a search box."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from campaigns.models import Campaign, Recipient
from campaigns.views import RECIPIENTS_PER_PAGE
from tests.outcomes import set_outcome

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


def page_summary(html: str) -> str:
    match = re.search(r"<span[^>]*data-page-summary>([^<]*)</span>", html)
    assert match is not None, "no page summary"
    return match.group(1)


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
    # One of the queries reads the import that the page shows, one the
    # signed-in user's session (the user is read with it), one the user's
    # workspaces, and one the activity log's newest events.
    for campaign in (small, large):
        with django_assert_max_num_queries(8):
            status, _html = get(client, campaign, **params)
        assert status == 200


def mixed_campaign(make_campaign: MakeCampaign) -> Campaign:
    """A campaign of 315 recipients whose statuses alternate in blocks, after
    another campaign's recipients, so that no status is one run of ids."""
    other = make_campaign(name="Earlier", recipients=[])
    add_recipients(other, 80, status=Recipient.Status.SENT)
    campaign = make_campaign(recipients=[])
    blocks = [(40, "sent"), (60, "failed"), (90, "sent"), (55, "failed"), (70, "queued")]
    for count, status in blocks:
        add_recipients(campaign, count, status=status)
    return campaign


def walk(client: Client, campaign: Campaign, link: str, start: dict[str, str]) -> list[list[int]]:
    """Follow the `link` page links from the page of `start`; returns each page's row ids."""
    url = campaign.get_absolute_url()
    response = client.get(url, start)
    pages = []
    while True:
        assert response.status_code == 200
        html = response.content.decode()
        pages.append(row_ids(html))
        href = page_links(html).get(link)
        if href is None:
            return pages
        response = client.get(url + href.replace("&amp;", "&"))


@pytest.mark.parametrize(
    ("params", "matching"),
    [
        ({}, {}),
        ({"status": "failed"}, {"status": "failed"}),
        ({"status": "sent"}, {"status": "sent"}),
        ({"q": "user 1"}, {"name__icontains": "user 1"}),
        ({"status": "failed", "q": "user"}, {"status": "failed", "name__icontains": "user"}),
    ],
)
def test_page_links_walk_every_row_once(
    client: Client,
    make_campaign: MakeCampaign,
    params: dict[str, str],
    matching: dict[str, str],
) -> None:
    # Pages in the second half are read from the end of the list. Forwards
    # and backwards, the links must still list every row once, in id order.
    campaign = mixed_campaign(make_campaign)
    ids = list(campaign.recipients.filter(**matching).order_by("id").values_list("id", flat=True))
    assert len(ids) > RECIPIENTS_PER_PAGE

    forwards = walk(client, campaign, "Next →", params)
    last = len(forwards)
    backwards = walk(client, campaign, "← Previous", {**params, "page": str(last)})

    assert [row for page in forwards for row in page] == ids
    assert backwards == forwards[::-1]
    assert [len(page) for page in forwards[:-1]] == [RECIPIENTS_PER_PAGE] * (last - 1)


def test_page_summary_counts_rows_that_changed_status(
    client: Client, make_campaign: MakeCampaign
) -> None:
    # Without a search, the number of rows comes from the campaign's status
    # counts, which follow every change of status.
    campaign = mixed_campaign(make_campaign)
    campaign.start()
    sent = list(campaign.recipients.filter(status="queued").order_by("id")[:12])
    for recipient in sent:
        assert set_outcome(recipient, Recipient.Status.SENT)

    _status, html = get(client, campaign, status="sent", page=3)

    assert page_summary(html) == "Recipients 101\N{EN DASH}142 of 142 · page 3 of 3"
    assert row_ids(html)[-12:] == [r.pk for r in sent]
    assert page_summary(get(client, campaign, status="queued")[1]) == (
        "Recipients 1\N{EN DASH}50 of 58 · page 1 of 2"
    )


@pytest.mark.parametrize(
    ("params", "counts"),
    [({}, False), ({"status": "sent"}, False), ({"page": "5"}, False), ({"q": "user"}, True)],
)
def test_only_a_search_counts_recipients(
    client: Client, make_campaign: MakeCampaign, params: dict[str, str], counts: bool
) -> None:
    campaign = mixed_campaign(make_campaign)

    with CaptureQueriesContext(connection) as captured:
        status, _html = get(client, campaign, **params)

    assert status == 200
    counted = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT(")]
    assert bool(counted) == counts, counted


def insert_recipients(campaign: Campaign, count: int, failed_every: int = 0) -> None:
    """Insert `count` sent recipients in SQL, every `failed_every`-th one failed."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Recipient._meta.db_table}
                   (campaign_id, name, email, phone_number, status, failure_reason, attempts,
                    attempt_base, last_error_transient, provider_message_id)
            SELECT %s, 'User ' || g, 'user' || g || '@example.com', '',
                   CASE WHEN %s > 0 AND g %% %s = 0 THEN 'failed' ELSE 'sent' END,
                   '', 1, 0, false, ''
              FROM generate_series(1, %s) AS g
            """,
            [campaign.pk, failed_every, max(failed_every, 1), count],
        )


def plan_nodes(plan: dict) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"page": "40"},
        {"status": "sent"},
        {"status": "sent", "page": "36"},
        {"status": "failed"},
        {"status": "failed", "page": "4"},
    ],
)
def test_first_and_last_pages_read_few_rows(
    client: Client, make_campaign: MakeCampaign, params: dict[str, str]
) -> None:
    # Earlier campaigns' recipients come first in the primary key, and a scan
    # of it would read them all for this campaign's first page. OFFSET would
    # read every row before the last page.
    earlier = make_campaign(name="Earlier", recipients=[])
    insert_recipients(earlier, 30_000)
    campaign = make_campaign(recipients=[])
    insert_recipients(campaign, 2_000, failed_every=10)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Recipient._meta.db_table}")

    with CaptureQueriesContext(connection) as captured:
        status, html = get(client, campaign, **params)
    table = Recipient._meta.db_table
    [page_sql] = [
        q["sql"]
        for q in captured.captured_queries
        if "ORDER BY" in q["sql"] and f'FROM "{table}"' in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {page_sql}")
        [[[explained]]] = cursor.fetchall()

    assert status == 200
    assert len(row_ids(html)) == RECIPIENTS_PER_PAGE
    nodes = plan_nodes(explained["Plan"])
    read = sum(
        node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        for node in nodes
        if "Scan" in node["Node Type"]
    )
    assert read < 2 * RECIPIENTS_PER_PAGE, f"{read} rows read by {page_sql}"
