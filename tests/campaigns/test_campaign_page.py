"""The campaign page: header counts, progress, actions and the recipients table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from campaigns.models import Campaign, Recipient
from live import broadcasts
from tests.outcomes import claim, move_to_status, set_outcome

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
