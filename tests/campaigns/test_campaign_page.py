"""The campaign page: header counts, progress, actions and the recipients table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from campaigns.models import Campaign, Recipient
from campaigns.views import RECIPIENTS_PER_PAGE
from live import broadcasts, streams
from live.streams import entry_order
from tests.conftest import StreamListener
from tests.outcomes import claim, move_to_status, set_outcome
from tests.servers import free_port

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

READ_ONLY_NOTICE = "This campaign has been dispatched, so its recipients are read-only."
CANCELLED_NOTICE = "This campaign was cancelled, so its recipients are read-only."

# The operator actions in the header, by URL name and button text.
ACTIONS = {
    "dispatch": "Dispatch",
    "pause": "Pause",
    "resume": "Resume",
    "cancel": "Cancel",
    "retry_failed": "Retry failed",
}


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


def header(html: str) -> str:
    start = html.index('<section id="campaign_')
    return html[start : html.index("</section>", start)]


def actions_shown(html: str, campaign: Campaign) -> set[str]:
    """The URL names of the operator actions that the header offers as buttons."""
    shown = set()
    for name, label in ACTIONS.items():
        has_form = f'action="{reverse(f"campaigns:{name}", args=[campaign.pk])}"' in html
        has_button = f">{label}</button>" in html
        assert has_form == has_button, f"{name}: form shown {has_form}, button shown {has_button}"
        if has_form:
            shown.add(name)
    return shown


def rate_limit_sentence(html: str) -> str:
    match = re.search(r"<p [^>]*data-rate-limit>(.*?)</p>", html, flags=re.DOTALL)
    assert match is not None, "no rate-limit sentence in the header"
    return " ".join(match.group(1).split())


def recipient_row(html: str, recipient: Recipient) -> str:
    start = html.index(f'<tr id="{recipient.dom_id}"')
    return html[start : html.index("</tr>", start)]


def test_page_shows_header_counts(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, _third = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")

    html = page(client, campaign)

    assert header_count(html, "total") == "3"
    assert header_count(html, "queued") == "1"
    assert header_count(html, "in_flight") == "0"
    assert header_count(html, "sent") == "1"
    assert header_count(html, "failed") == "1"
    assert header_count(html, "cancelled") == "0"


def test_page_counts_in_flight_and_cancelled(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[{"email": f"user{n}@example.com"} for n in range(4)])
    campaign.start()
    in_flight, sent, _first_queued, _second_queued = campaign.recipients.order_by("id")
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert campaign.cancel()

    html = page(client, campaign)

    assert header_count(html, "total") == "4"
    assert header_count(html, "queued") == "0"
    assert header_count(html, "in_flight") == "1"
    assert header_count(html, "sent") == "1"
    assert header_count(html, "cancelled") == "2"
    # Cancelled recipients count as processed; the one in flight does not.
    assert progress_attributes(html) == ("3", "4")
    assert "75%" in html


def test_page_shows_progress(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, _third = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.SENT)
    set_outcome(second, Recipient.Status.FAILED, "Mailbox full")

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
    set_outcome(grace, Recipient.Status.FAILED, "Number not reachable")

    html = page(client, campaign)

    rows = re.findall(r'<tr id="recipient_(\d+)" data-status="(\w+)" data-version="(\d+)">', html)
    assert [status for _pk, status, _version in rows] == ["queued", "failed", "queued"]
    # Each row should carry its version, which the page compares with live updates.
    stored = dict(campaign.recipients.values_list("pk", "version"))
    assert {int(pk): int(version) for pk, _status, version in rows} == stored
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
    assert CANCELLED_NOTICE not in html


@pytest.mark.parametrize("status", ["processing", "paused", "completed", "cancelled"])
def test_page_read_only_when_dispatched(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    html = page(client, campaign)

    if status == "cancelled":
        assert CANCELLED_NOTICE in html
        assert READ_ONLY_NOTICE not in html
    else:
        assert READ_ONLY_NOTICE in html
        assert CANCELLED_NOTICE not in html
    assert reverse("campaigns:dispatch", args=[campaign.pk]) not in html
    assert ">Dispatch</button>" not in html
    assert reverse("campaigns:edit", args=[campaign.pk]) not in html
    assert reverse("campaigns:delete", args=[campaign.pk]) not in html
    assert f'data-campaign-status="{status}"' in html


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", {"dispatch"}),
        ("processing", {"pause", "cancel"}),
        ("paused", {"resume", "cancel"}),
        ("completed", set()),
        ("cancelled", set()),
    ],
)
def test_page_actions_by_status(
    client: Client, make_campaign: MakeCampaign, status: str, expected: set[str]
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    html = page(client, campaign)

    assert actions_shown(html, campaign) == expected


def test_page_offers_retry_after_failures(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    first, *others = campaign.recipients.order_by("id")
    set_outcome(first, Recipient.Status.FAILED, "timed out", transient=True)
    for recipient in others:
        set_outcome(recipient, Recipient.Status.SENT)
    assert campaign.complete()

    html = page(client, campaign)

    assert actions_shown(html, campaign) == {"retry_failed"}
    # The header that broadcasts publish should offer it too.
    assert actions_shown(broadcasts.render_header(campaign), campaign) == {"retry_failed"}


def test_page_hides_retry_without_transient_failures(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    campaign.start()
    first, second, third = campaign.recipients.order_by("id")
    assert set_outcome(first, Recipient.Status.FAILED, "mailbox unavailable")
    assert set_outcome(second, Recipient.Status.FAILED, "number not reachable")
    assert set_outcome(third, Recipient.Status.SENT)
    assert campaign.complete()

    html = page(client, campaign)

    # Retry failed would queue nothing, because every failure was permanent.
    assert header_count(html, "failed") == "2"
    assert actions_shown(html, campaign) == set()
    assert actions_shown(broadcasts.render_header(campaign), campaign) == set()


def test_page_cancel_asks_for_confirmation(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)

    html = page(client, campaign)

    cancel_url = reverse("campaigns:cancel", args=[campaign.pk])
    form = re.search(rf'<form [^>]*action="{cancel_url}"\s+([^>]*)>', html)
    assert form is not None
    assert 'data-turbo-confirm="Cancel this campaign? Queued recipients will not be sent."' in (
        form.group(1)
    )


def test_page_shows_pause_reason(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    assert campaign.pause("5 failures since the last resume (limit 5) <b>")

    html = page(client, campaign)

    match = re.search(r"<p [^>]*data-pause-reason>(.*?)</p>", html, flags=re.DOTALL)
    assert match is not None, "no pause reason in the header"
    assert " ".join(match.group(1).split()) == (
        "Paused: 5 failures since the last resume (limit 5) &lt;b&gt;"
    )


@pytest.mark.parametrize("status", ["paused", "processing"])
def test_page_without_pause_reason(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    campaign.start()
    if status == Campaign.Status.PAUSED:
        assert campaign.pause("")
    else:
        # A resume clears the reason of the pause before it.
        assert campaign.pause("by hand")
        assert campaign.resume()

    html = page(client, campaign)

    assert "data-pause-reason" not in html


def test_page_shows_cancelled_time(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    assert campaign.cancel()
    assert campaign.cancelled_at is not None

    html = page(client, campaign)

    assert f" · cancelled {campaign.cancelled_at:%Y-%m-%d %H:%M:%S} UTC" in header(html)


def test_page_shows_retry_time(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    retrying, waiting, failed = campaign.recipients.order_by("id")
    retry_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert set_outcome(
        retrying, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=retry_at
    )
    assert set_outcome(failed, Recipient.Status.FAILED, "timed out", transient=True)

    html = page(client, campaign)

    retry_row = recipient_row(html, retrying)
    assert 'data-status="queued"' in retry_row
    assert "data-retry-at" in retry_row
    assert 'retry at <time datetime="2030-01-02T03:04:05+00:00">03:04:05 UTC</time>' in retry_row
    # It should show no retry time for a recipient that is simply waiting, or failed.
    assert "data-retry-at" not in recipient_row(html, waiting)
    assert "data-retry-at" not in recipient_row(html, failed)


def test_page_summarizes_attempts(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    twice, once, never = campaign.recipients.order_by("id")
    soon = timezone.now() + timedelta(seconds=1)
    assert set_outcome(twice, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=soon)
    assert set_outcome(twice, Recipient.Status.SENT)
    assert set_outcome(once, Recipient.Status.FAILED, "Mailbox full")

    html = page(client, campaign)

    twice_row = recipient_row(html, twice)
    attempts_url = reverse("campaigns:attempts", args=[campaign.pk, twice.pk])
    assert re.search(r"<summary [^>]*>2 attempts</summary>", twice_row)
    frame = re.search(r'<turbo-frame id="([^"]+)" loading="lazy"\s+src="([^"]+)">', twice_row)
    assert frame is not None, "no lazy turbo-frame for the attempts"
    assert frame.groups() == (f"{twice.dom_id}_attempts", attempts_url)
    assert re.search(r"<summary [^>]*>1 attempt</summary>", recipient_row(html, once))
    # It should offer no attempts for a recipient that was never tried.
    assert "data-attempts" not in recipient_row(html, never)


@pytest.mark.parametrize(
    ("provider_rate", "campaign_rate", "sentence"),
    [
        (0.0, None, "Rate limit: none for the simulated provider."),
        (50.0, None, "Rate limit: 50 messages/s for the simulated provider (all campaigns)."),
        (
            12.5,
            2.25,
            "Rate limit: 12.5 messages/s for the simulated provider (all campaigns); "
            "2.25 messages/s for this campaign.",
        ),
        (
            12.0,
            0.25,
            "Rate limit: 12 messages/s for the simulated provider (all campaigns); "
            "0.25 messages/s for this campaign.",
        ),
        (
            0.0,
            0.5,
            "Rate limit: none for the simulated provider; 0.5 messages/s for this campaign.",
        ),
    ],
    ids=["none", "provider", "both", "both-whole", "campaign"],
)
def test_page_states_rate_limits(
    client: Client,
    make_campaign: MakeCampaign,
    settings: Settings,
    provider_rate: float,
    campaign_rate: float | None,
    sentence: str,
) -> None:
    settings.DELIVERY_RATE_LIMIT_PER_SECOND = provider_rate
    campaign = make_campaign(rate_limit_per_second=campaign_rate)

    html = page(client, campaign)

    assert rate_limit_sentence(html) == sentence


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


def header_version(html: str) -> int:
    match = re.search(r'<section id="campaign_\d+_header" [^>]*data-version="(\d+)"', html)
    assert match is not None, "no data-version on the header"
    return int(match.group(1))


def test_page_header_carries_read_version(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    before = Campaign.objects.with_progress().get(pk=campaign.pk).read_version
    assert before is not None

    html = page(client, campaign)

    after = Campaign.objects.with_progress().get(pk=campaign.pk).read_version
    assert after is not None
    # The page reads the campaign between the two reads, and versions never go down.
    assert before <= header_version(html) <= after


# The live stream's URL


def stream_query(html: str) -> dict[str, list[str]]:
    """The query of the page's <turbo-stream-source> URL, parsed."""
    match = re.search(r'<turbo-stream-source id="[^"]+" src="([^"]+)">', html)
    assert match is not None, "no <turbo-stream-source> on the page"
    url = urlsplit(unescape(match.group(1)))
    return parse_qs(url.query, keep_blank_values=True)


def test_stream_url_names_page_rows(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[])
    recipients = [
        Recipient.objects.create(campaign=campaign, email=f"user{n}@example.com")
        for n in range(RECIPIENTS_PER_PAGE + 5)
    ]

    first = stream_query(page(client, campaign))
    response = client.get(campaign.get_absolute_url(), {"page": 2})
    second = stream_query(response.content.decode())

    # Each page's stream should name exactly that page's recipients, in order.
    assert first["ids"] == [",".join(str(r.pk) for r in recipients[:RECIPIENTS_PER_PAGE])]
    assert second["ids"] == [",".join(str(r.pk) for r in recipients[RECIPIENTS_PER_PAGE:])]


def test_stream_url_names_filtered_rows(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    _ada, grace, _alan = campaign.recipients.order_by("id")
    assert set_outcome(grace, Recipient.Status.SENT)

    response = client.get(campaign.get_absolute_url(), {"status": "sent"})

    assert stream_query(response.content.decode())["ids"] == [str(grace.pk)]


def test_stream_url_without_rows(client: Client, make_campaign: MakeCampaign) -> None:
    html = page(client, make_campaign(recipients=[]))

    assert stream_query(html)["ids"] == [""]


def test_stream_url_starts_at_current_position(
    client: Client, make_campaign: MakeCampaign, listen: Callable[[Campaign], StreamListener]
) -> None:
    campaign = make_campaign()
    listener = listen(campaign)
    streams.publish_campaign(campaign.pk)
    streams.publish_rows(campaign.pk, [campaign.recipients.order_by("id")[0].pk])
    [_, newest] = listener.entries()

    html = page(client, campaign)

    assert stream_query(html)["after"] == [newest.id]


def test_stream_url_starts_at_beginning_of_empty_stream(
    client: Client, make_campaign: MakeCampaign
) -> None:
    html = page(client, make_campaign())

    assert stream_query(html)["after"] == [streams.START]


def test_stream_url_without_position_when_redis_is_down(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    campaign = make_campaign()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    html = page(client, campaign)

    # The stream then starts with the current state, so the page still works.
    query = stream_query(html)
    assert "after" not in query
    recipient_ids = campaign.recipients.order_by("id").values_list("pk", flat=True)
    assert query["ids"] == [",".join(str(pk) for pk in recipient_ids)]


def test_stream_url_position_read_before_data(
    client: Client,
    make_campaign: MakeCampaign,
    listen: Callable[[Campaign], StreamListener],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker records an outcome and announces it just before the page reads
    # the stream position. The stream starts after that position and does not
    # send the change, so the page's own data must already show it. A page
    # that read the database before the position would show the row queued
    # and never get the update.
    campaign = make_campaign()
    campaign.start()
    recipient = campaign.recipients.order_by("id")[0]
    listener = listen(campaign)
    read_position = streams.current_position

    def deliver_then_read_position(campaign_id: int) -> str | None:
        assert set_outcome(recipient, Recipient.Status.SENT)
        broadcasts.broadcast_recipients(campaign_id, [recipient])
        return read_position(campaign_id)

    monkeypatch.setattr(streams, "current_position", deliver_then_read_position)

    html = page(client, campaign)

    [announced] = listener.entries()
    assert stream_query(html)["after"] == [announced.id]
    assert 'data-status="sent"' in recipient_row(html, recipient)
    assert header_count(html, "sent") == "1"


def test_stream_url_position_misses_no_later_change(
    client: Client,
    make_campaign: MakeCampaign,
    listen: Callable[[Campaign], StreamListener],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A change announced right after the position read comes after the
    # position, so the stream sends it whether or not the page showed it.
    campaign = make_campaign()
    campaign.start()
    recipient = campaign.recipients.order_by("id")[0]
    listener = listen(campaign)
    read_position = streams.current_position

    def read_position_then_deliver(campaign_id: int) -> str | None:
        position = read_position(campaign_id)
        assert set_outcome(recipient, Recipient.Status.SENT)
        broadcasts.broadcast_recipients(campaign_id, [recipient])
        return position

    monkeypatch.setattr(streams, "current_position", read_position_then_deliver)

    html = page(client, campaign)

    [after] = stream_query(html)["after"]
    later = [e for e in listener.entries() if entry_order(e.id) > entry_order(after)]
    assert [(e.kind, e.recipient_ids) for e in later] == [("rows", [recipient.pk])]
