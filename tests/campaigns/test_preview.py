"""The message preview page: a campaign's email and SMS rendered for one recipient."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import resolve, reverse
from django.utils.html import escape

from campaigns.models import Campaign, Recipient
from suppressions.tokens import UnsubscribeToken, read_token

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

CONTENT = {
    "email_subject": "Hello {{ first_name }}",
    "email_text": "Dear {{ name }},\nthis goes to {{ email }}.",
    "email_html": "<p>Dear {{ name }}</p>",
    "sms_text": "Hi {{ first_name }}",
}


def preview_url(campaign: Campaign, recipient: object = None) -> str:
    url = reverse("campaigns:preview", args=[campaign.pk])
    return url if recipient is None else f"{url}?recipient={recipient}"


def part(html: str, name: str) -> str:
    """Return the text of the element marked `data-preview-part="name"`."""
    match = re.search(rf'data-preview-part="{name}"[^>]*>(.*?)</', html, re.DOTALL)
    assert match is not None, f"no preview part {name}"
    return match.group(1)


def test_preview_defaults_to_first_recipient(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert part(html, "subject") == "Hello Ada"
    # The text as dispatch sends it, with the unsubscribe footer.
    text = part(html, "text")
    assert text.startswith("Dear Ada,\nthis goes to ada@example.com.\n\n-- \nTo stop receiving")
    assert part(html, "sms") == "Hi Ada"
    assert "This recipient has no phone number, so it cannot get the SMS." in html


def test_preview_chosen_recipient(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    alan = campaign.recipients.get(name="Alan")

    response = client.get(preview_url(campaign, alan.pk))

    html = response.content.decode()
    assert response.status_code == 200
    assert part(html, "subject") == "Hello Alan"
    assert part(html, "sms") == "Hi Alan"
    assert f'<option value="{alan.pk}" selected>' in html
    assert "cannot get the" not in html


def test_preview_other_campaigns_recipient_404(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    other = make_campaign(name="Other", recipients=[{"email": "eve@example.com"}])
    eve = other.recipients.get()

    response = client.get(preview_url(campaign, eve.pk))

    assert response.status_code == 404
    assert b"eve@example.com" not in response.content


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "\u0661", "999999999"])
def test_preview_bad_recipient_404(client: Client, make_campaign: MakeCampaign, value: str) -> None:
    campaign = make_campaign(**CONTENT)

    response = client.get(preview_url(campaign, value))

    assert response.status_code == 404


def test_preview_unknown_campaign_404(client: Client) -> None:
    response = client.get(reverse("campaigns:preview", args=[999999]))

    assert response.status_code == 404


def test_preview_rejects_post(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)

    response = client.post(preview_url(campaign))

    assert response.status_code == 405


def test_preview_html_in_sandboxed_frame(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        email_html="<p style='color:red'>Hi {{ name }}</p><script>alert(1)</script>",
        recipients=[{"name": "<img src=x onerror=alert(2)>", "email": "ada@example.com"}],
    )

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    footer = re.search(r"To stop receiving these messages: (\S+)", part(html, "text"))
    assert footer is not None
    rendered = (
        "<p style='color:red'>Hi &lt;img src=x onerror=alert(2)&gt;</p><script>alert(1)</script>\n"
        f'<p><a href="{footer.group(1)}">Unsubscribe</a> to stop receiving these messages.</p>\n'
    )
    iframe = re.search(r"<iframe[^>]*>", html)
    assert iframe is not None
    assert 'sandbox=""' in iframe.group(0)
    assert "srcdoc" not in iframe.group(0)
    frame_url = re.search(r' src="([^"]+)"', iframe.group(0))
    assert frame_url is not None
    assert part(html, "html-source") == escape(rendered)
    assert "<script>alert" not in html
    assert "<img src=x" not in html

    # It should serve the HTML as sent, under a policy that lets its inline
    # styles apply and blocks its script, in a frame of this app's pages only.
    frame = client.get(unescape(frame_url.group(1)))
    assert frame.status_code == 200
    assert frame["Content-Type"] == "text/html; charset=utf-8"
    assert frame.content.decode() == rendered
    policy = frame["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy
    assert "frame-ancestors 'self'" in policy
    assert "sandbox" in policy.split("; ")
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert frame["Cache-Control"] == "no-store"


def test_preview_frame_defaults_to_first_recipient(
    client: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(**CONTENT)
    frame_url = reverse("campaigns:preview_html", args=[campaign.pk])

    response = client.get(frame_url)

    assert response.status_code == 200
    assert response.content.decode().startswith("<p>Dear Ada</p>")


@pytest.mark.parametrize(
    ("content", "recipients", "query"),
    [
        ({**CONTENT, "email_html": ""}, None, ""),
        (CONTENT, [], ""),
        (CONTENT, None, "?recipient=abc"),
        (CONTENT, None, "?recipient=999999999"),
        ({**CONTENT, "email_html": "{% load static %}"}, None, ""),
    ],
    ids=["no-html-body", "no-recipients", "bad-id", "unknown-id", "broken-content"],
)
def test_preview_frame_404(
    client: Client,
    make_campaign: MakeCampaign,
    content: dict[str, str],
    recipients: list[dict[str, str]] | None,
    query: str,
) -> None:
    campaign = make_campaign(recipients=recipients, **content)

    response = client.get(reverse("campaigns:preview_html", args=[campaign.pk]) + query)

    assert response.status_code == 404


class TagCollector(HTMLParser):
    """Collect every start tag of a page with its attributes, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_preview_page_has_no_inline_script_or_style(
    client: Client, make_campaign: MakeCampaign
) -> None:
    # A strict Content-Security-Policy blocks inline scripts, styles and event
    # handlers, so the page may have none, whatever the email's HTML holds.
    content = {
        **CONTENT,
        "email_html": "<style>p{color:red}</style><p onclick='x()'>{{ name }}</p>",
    }
    campaign = make_campaign(**content)
    collector = TagCollector()

    collector.feed(client.get(preview_url(campaign)).content.decode())

    tag_names = [tag for tag, _attrs in collector.tags]
    assert "iframe" in tag_names
    assert "style" not in tag_names
    for tag, attrs in collector.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
        if tag == "script":
            assert attrs.get("src"), attrs


def test_preview_sms_size_gsm7(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(sms_text="{{ first_name }} " + "a" * 157)

    html = client.get(preview_url(campaign)).content.decode()

    assert "161 characters in GSM-7, sent as 2 segments." in html


def test_preview_sms_size_ucs2(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(sms_text="Olá {{ first_name }}")

    html = client.get(preview_url(campaign)).content.decode()

    assert "7 code units in UCS-2, sent as 1 segment." in html
    assert "fits 70 per SMS rather than 160" in html


def test_preview_without_content(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(email_subject="", email_text="", sms_text="")

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert "No subject yet." in html
    assert "No plain-text body yet." in html
    assert "No HTML body: the email is plain text only." in html
    assert "No SMS text yet." in html
    assert "<iframe" not in html


def test_preview_shows_blank_rendering(client: Client, make_campaign: MakeCampaign) -> None:
    # The first recipient, Ada, has no phone number.
    campaign = make_campaign(
        email_subject="{{ phone }}", email_text="Dear {{ first_name }}", sms_text="{{ phone }}"
    )

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<p class="field-error" data-empty-part="email">The email subject is empty for this '
        "recipient, so this email cannot be sent.</p>"
    ) in html
    assert (
        '<p class="field-error" data-empty-part="sms">The SMS text is empty for this '
        "recipient, so this SMS cannot be sent.</p>"
    ) in html
    assert html.count("Empty for this recipient.") == 2
    assert "No subject yet." not in html
    assert "No SMS text yet." not in html
    # The text still shows, without the footer that a sent email would get.
    assert part(html, "text") == "Dear Ada"


def test_preview_without_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[], **CONTENT)

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert "This campaign has no recipients to preview the message for." in html
    assert "<select" not in html


def test_preview_lists_first_fifty(client: Client, make_campaign: MakeCampaign) -> None:
    rows = [{"email": f"r{number:02d}@example.com"} for number in range(55)]
    campaign = make_campaign(recipients=rows, **CONTENT)
    last = campaign.recipients.order_by("id").last()
    assert last is not None

    first_page = client.get(preview_url(campaign)).content.decode()
    chosen = client.get(preview_url(campaign, last.pk)).content.decode()

    assert first_page.count("<option ") == 50
    assert "r49@example.com" in first_page
    assert "r50@example.com" not in first_page
    assert 'id="preview_recipient_id"' in first_page
    assert chosen.count("<option ") == 51
    assert f'<option value="{last.pk}" selected>r54@example.com</option>' in chosen


def test_preview_few_recipients_no_id_box(client: Client, make_campaign: MakeCampaign) -> None:
    rows = [{"email": f"r{number:02d}@example.com"} for number in range(50)]
    campaign = make_campaign(recipients=rows)

    html = client.get(preview_url(campaign)).content.decode()

    assert html.count("<option ") == 50
    assert 'id="preview_recipient_id"' not in html


def test_preview_stored_invalid_content(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    Campaign.objects.filter(pk=campaign.pk).update(email_text="{% debug %}")

    response = client.get(preview_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert "The saved content cannot be rendered." in html
    assert "Line 1: the tag “debug” is not allowed in message content." in html
    assert 'data-preview="email"' not in html


def test_campaign_page_links_preview(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    html = client.get(campaign.get_absolute_url()).content.decode()

    assert f'href="{preview_url(campaign)}"' in html


def test_preview_of_dispatched_campaign(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    Recipient.objects.filter(campaign=campaign).update(status=Recipient.Status.SENT)

    response = client.get(preview_url(campaign))

    assert response.status_code == 200
    assert part(response.content.decode(), "subject") == "Hello Ada"


def link_token(url: str) -> UnsubscribeToken:
    """Return what the token in an unsubscribe page URL carries."""
    match = resolve(urlsplit(url).path)
    assert match.view_name == "suppressions:unsubscribe"
    return read_token(match.kwargs["token"])


def test_preview_email_has_unsubscribe_footer(
    client: Client, make_campaign: MakeCampaign, settings: Any
) -> None:
    settings.SITE_URL = "https://mail.example.com"
    campaign = make_campaign(**CONTENT)
    ada = campaign.recipients.get(name="Ada")

    html = client.get(preview_url(campaign)).content.decode()

    footer = re.search(r"To stop receiving these messages: (\S+)\n$", part(html, "text"))
    assert footer is not None
    url = footer.group(1)
    assert url.startswith("https://mail.example.com/u/")
    token = link_token(url)
    assert (token.campaign_id, token.recipient_id, token.address) == (
        campaign.pk,
        ada.pk,
        "ada@example.com",
    )
    html_source = unescape(part(html, "html-source"))
    assert html_source == (
        f'<p>Dear Ada</p>\n<p><a href="{url}">Unsubscribe</a> '
        "to stop receiving these messages.</p>\n"
    )


def test_preview_unsubscribe_url_field(client: Client, make_campaign: MakeCampaign) -> None:
    # The link in the content replaces the footer.
    content = {
        **CONTENT,
        "email_text": "Leave: {{ unsubscribe_url }}",
        "sms_text": "Stop: {{ unsubscribe_url }}",
    }
    campaign = make_campaign(**content)
    grace = campaign.recipients.get(name="Grace")

    html = client.get(preview_url(campaign, grace.pk)).content.decode()

    text = part(html, "text")
    assert text.startswith("Leave: http://127.0.0.1:8000/u/")
    assert "To stop receiving" not in text
    # Grace has only a phone number, which both links are signed for.
    for url in (text.removeprefix("Leave: "), part(html, "sms").removeprefix("Stop: ")):
        token = link_token(url)
        assert (token.recipient_id, token.address) == (grace.pk, "+12025550101")
    assert "Dispatch sends this recipient the SMS, to +12025550101." in html


@pytest.mark.parametrize(
    ("prefer_sms", "channel_line"),
    [
        (False, "Dispatch sends this recipient the email, to alan@example.com."),
        (True, "Dispatch sends this recipient the SMS, to +12025550102."),
    ],
)
def test_preview_links_per_channel(
    client: Client, make_campaign: MakeCampaign, prefer_sms: bool, channel_line: str
) -> None:
    content = {**CONTENT, "sms_text": "Stop: {{ unsubscribe_url }}"}
    campaign = make_campaign(prefer_sms=prefer_sms, **content)
    alan = campaign.recipients.get(name="Alan")

    html = client.get(preview_url(campaign, alan.pk)).content.decode()

    assert channel_line in html
    footer = re.search(r"To stop receiving these messages: (\S+)", part(html, "text"))
    assert footer is not None
    assert link_token(footer.group(1)).address == "alan@example.com"
    assert link_token(part(html, "sms").removeprefix("Stop: ")).address == "+12025550102"


def test_preview_shows_test_send_form(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    alan = campaign.recipients.get(name="Alan")

    html = client.get(preview_url(campaign, alan.pk)).content.decode()

    action = reverse("campaigns:test_send", args=[campaign.pk])
    assert f'<form method="post" action="{action}"' in html
    assert f'<input type="hidden" name="recipient" value="{alan.pk}">' in html
    assert '<label for="test_send_address"' in html
    assert "Email address or phone number" in html


def test_preview_test_send_without_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[], **CONTENT)

    html = client.get(preview_url(campaign)).content.decode()

    assert '<input type="hidden" name="recipient" value="">' in html
    assert "rendered with sample recipient fields" in html


def test_preview_no_test_send_when_dispatched(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(**CONTENT)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PROCESSING)

    html = client.get(preview_url(campaign)).content.decode()

    assert reverse("campaigns:test_send", args=[campaign.pk]) not in html
    assert "Test sends are for pending campaigns only. This campaign is processing" in html
