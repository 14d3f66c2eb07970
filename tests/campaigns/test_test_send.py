"""The test send: a pending campaign's message sent to one typed address by the real providers.

Email goes through ChannelRouter and EmailBackendProvider to an aiosmtpd
server on loopback (the `smtp_sink` fixture). SMS goes through the simulated
provider, or through the webhook provider to a small HTTP server on loopback.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import resolve, reverse

from campaigns.models import Campaign, DeliveryAttempt, Recipient, StatusCountChange
from dispatch.providers import Delivery
from suppressions.models import Suppression, SuppressionReason, suppress
from suppressions.tokens import UnsubscribeToken, read_token
from tests.factories import operator_workspace
from tests.smtp import RecordingHandler

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

SITE_URL = "https://mail.example.com"
CONTENT = {
    "email_subject": "Hello {{ first_name }}",
    "email_text": "Dear {{ name }},\nthis goes to {{ email }}.",
    "email_html": "<p>Dear {{ name }}</p>",
    "sms_text": "Hi {{ first_name }}",
}
RECIPIENTS = [
    {"name": "Ada <b>Lovelace</b>", "email": "ada@example.com"},
    {"name": "Alan Turing", "email": "alan@example.com", "phone_number": "+12025550102"},
]
FOOTER = re.compile(r"To stop receiving these messages: (\S+)")
LOGGER = "campaigns.send_test_views"


@pytest.fixture(autouse=True)
def router(settings: Any) -> None:
    """Deliver as production does: email over SMTP, SMS through the simulated provider."""
    settings.DELIVERY_PROVIDER = "dispatch.providers.ChannelRouter"
    settings.EMAIL_DELIVERY_PROVIDER = "dispatch.providers.EmailBackendProvider"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.DEFAULT_FROM_EMAIL = "Shop <shop@mail.example.com>"
    settings.SITE_URL = SITE_URL


@dataclass
class Gateway:
    """The loopback SMS gateway's URL and the JSON bodies it received."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def sms_gateway(settings: Any) -> Iterator[Gateway]:
    """An HTTP server on loopback that accepts webhook SMS and replies with id "gw-7"."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            reply = b'{"id": "gw-7"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/messages"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.WebhookSmsProvider"
    settings.SMS_WEBHOOK_URL = url
    settings.SMS_WEBHOOK_SECRET = "test-send-secret"
    try:
        yield Gateway(url=url, bodies=received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class BrokenProvider:
    """An SMS provider with a bug: it raises an exception that is no DeliveryError."""

    name = "broken"

    def deliver(self, delivery: Delivery) -> str:
        raise RuntimeError("provider bug")


@pytest.fixture
def campaign(make_campaign: MakeCampaign) -> Campaign:
    return make_campaign(recipients=RECIPIENTS, **CONTENT)


def send_url(campaign: Campaign) -> str:
    return reverse("campaigns:test_send", args=[campaign.pk])


def preview_url(campaign: Campaign, recipient: Recipient | None = None) -> str:
    url = reverse("campaigns:preview", args=[campaign.pk])
    return url if recipient is None else f"{url}?recipient={recipient.pk}"


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def token_of(url: str) -> tuple[str, UnsubscribeToken]:
    """Return the token in an unsubscribe URL, and what it carries."""
    token = resolve(urlsplit(url).path).kwargs["token"]
    return token, read_token(token)


def rows(campaign: Campaign) -> tuple[list[Any], ...]:
    """Every stored value of the campaign, its recipients, attempts and status counts."""
    return (
        list(Campaign.objects.filter(pk=campaign.pk).values()),
        list(Recipient.objects.filter(campaign=campaign).order_by("id").values()),
        list(DeliveryAttempt.objects.filter(campaign=campaign).order_by("id").values()),
        list(StatusCountChange.objects.filter(campaign_id=campaign.pk).order_by("id").values()),
    )


def alert(html: str) -> str:
    """Return the text of the test-send form's error block."""
    match = re.search(r'<div role="alert" data-test-send-errors>(.*?)</div>', html, re.DOTALL)
    assert match is not None, "no test-send error block"
    return match.group(1)


def test_email_arrives_with_test_subject(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    ada = campaign.recipients.get(email="ada@example.com")

    response = client.post(
        send_url(campaign), {"address": " Tester@Example.COM ", "recipient": ada.pk}
    )

    assert response.status_code == 303
    assert response["Location"] == preview_url(campaign, ada)
    assert len(smtp_sink.messages) == 1
    received = parse(smtp_sink.messages[0])
    assert received["To"] == "Tester@example.com"
    assert received["Subject"] == "[Test] Hello Ada"
    # The fields are the previewed recipient's, so {{ email }} is Ada's address.
    text = body(received, "plain")
    assert text.startswith("Dear Ada <b>Lovelace</b>,\nthis goes to ada@example.com.\n")
    html = body(received, "html")
    assert "<p>Dear Ada &lt;b&gt;Lovelace&lt;/b&gt;</p>" in html
    assert "<b>" not in html


def test_email_headers_and_footer(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    client.post(send_url(campaign), {"address": "tester@example.com"})

    received = parse(smtp_sink.messages[0])
    # A long Message-ID is folded onto its own line, which the parser keeps as a leading space.
    assert re.fullmatch(
        rf"<campaign-{campaign.pk}-test-[0-9a-f]{{32}}@mail\.example\.com>",
        received["Message-ID"].strip(),
    )
    footer = FOOTER.search(body(received, "plain"))
    assert footer is not None
    page_token, read = token_of(footer.group(1))
    assert footer.group(1).startswith(f"{SITE_URL}/u/")
    assert (read.campaign_id, read.recipient_id, read.address) == (
        campaign.pk,
        0,
        "tester@example.com",
    )
    assert received["List-Unsubscribe"] == f"<{SITE_URL}/u/{page_token}/one-click>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'<a href="{footer.group(1)}">Unsubscribe</a>' in body(received, "html")


def test_email_flash_names_address_and_id(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    response = client.post(send_url(campaign), {"address": "tester@example.com"}, follow=True)

    html = response.content.decode()
    message_id = parse(smtp_sink.messages[0])["Message-ID"].strip()
    assert response.status_code == 200
    assert (
        "Test email sent to tester@example.com. Provider message id: "
        f"{message_id.replace('<', '&lt;').replace('>', '&gt;')}"
    ) in html


def test_logs_one_line_without_body(
    client: Client,
    campaign: Campaign,
    smtp_sink: RecordingHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ada = campaign.recipients.get(email="ada@example.com")

    with caplog.at_level(logging.INFO, logger=LOGGER):
        client.post(send_url(campaign), {"address": "tester@example.com", "recipient": ada.pk})

    records = [record for record in caplog.records if record.name == LOGGER]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    line = records[0].getMessage()
    assert f"campaign {campaign.pk}: test email sent with the fields of recipient {ada.pk}" in line
    assert "Dear" not in line
    assert "Hello" not in line


def test_sms_goes_through_sms_provider(
    client: Client, campaign: Campaign, sms_gateway: Gateway
) -> None:
    alan = campaign.recipients.get(email="alan@example.com")

    response = client.post(
        send_url(campaign), {"address": "(202) 555-0143", "recipient": alan.pk}, follow=True
    )

    assert response.status_code == 200
    assert len(sms_gateway.bodies) == 1
    sent = sms_gateway.bodies[0]
    assert sent["to"] == "+12025550143"
    assert sent["text"] == "Hi Alan"
    assert sent["campaign_id"] == campaign.pk
    assert sent["recipient_id"] == 0
    assert re.fullmatch(rf"campaign-{campaign.pk}-test-[0-9a-f]{{32}}", sent["idempotency_key"])
    assert "Test SMS sent to +12025550143. Provider message id: gw-7" in response.content.decode()


def test_sms_simulated_provider(client: Client, campaign: Campaign) -> None:
    response = client.post(send_url(campaign), {"address": "+44 7911 123456"}, follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"Test SMS sent to \+447911123456\. Provider message id: simulated-", html)


def test_simulated_failure_not_sent(client: Client, campaign: Campaign, settings: Any) -> None:
    # The simulated provider fails numbers with this prefix, so the typed
    # number must reach it as the delivery's phone number.
    settings.DELIVERY_FAIL_PHONE_PREFIX = "+1202555019"

    response = client.post(send_url(campaign), {"address": "+12025550199"})

    assert response.status_code == 422
    assert "Not sent: number not reachable (simulated)." in alert(response.content.decode())


def test_sms_link_signed_for_number(
    client: Client, make_campaign: MakeCampaign, sms_gateway: Gateway
) -> None:
    campaign = make_campaign(sms_text="Stop: {{ unsubscribe_url }}")

    client.post(send_url(campaign), {"address": "+12025550143"})

    url = sms_gateway.bodies[0]["text"].removeprefix("Stop: ")
    _token, read = token_of(url)
    assert (read.campaign_id, read.recipient_id, read.address) == (campaign.pk, 0, "+12025550143")


def test_sample_fields_without_recipients(
    client: Client, make_campaign: MakeCampaign, smtp_sink: RecordingHandler
) -> None:
    campaign = make_campaign(recipients=[], **CONTENT)

    response = client.post(send_url(campaign), {"address": "tester@example.com"})

    assert response.status_code == 303
    assert response["Location"] == preview_url(campaign)
    received = parse(smtp_sink.messages[0])
    assert received["Subject"] == "[Test] Hello Ada"
    assert body(received, "plain").startswith("Dear Ada Lovelace,\nthis goes to ada@example.com.\n")


def test_no_recipient_field_uses_first(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    client.post(send_url(campaign), {"address": "tester@example.com"})

    assert parse(smtp_sink.messages[0])["Subject"] == "[Test] Hello Ada"


def test_recipient_of_other_campaign_rejected(
    client: Client, campaign: Campaign, make_campaign: MakeCampaign, smtp_sink: RecordingHandler
) -> None:
    other = make_campaign(name="Other", recipients=[{"email": "eve@example.com"}], **CONTENT)
    eve = other.recipients.get()

    response = client.post(
        send_url(campaign), {"address": "tester@example.com", "recipient": eve.pk}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "The recipient shown in the preview is no longer in this campaign." in alert(html)
    assert "eve@example.com" not in html
    assert smtp_sink.messages == []


@pytest.mark.parametrize("value", ["abc", "0", "-3", "99999999999999999999"])
def test_malformed_recipient_id_rejected(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler, value: str
) -> None:
    response = client.post(
        send_url(campaign), {"address": "tester@example.com", "recipient": value}
    )

    assert response.status_code == 422
    assert "The recipient id is not valid." in alert(response.content.decode())
    assert smtp_sink.messages == []


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("", "Enter an email address or a phone number."),
        ("   ", "Enter an email address or a phone number."),
        ("tester@example", "is not a valid email address."),
        ("tester@@example.com", "is not a valid email address."),
        ("12", "is not a valid phone number"),
        ("call me", "is not a phone number"),
        ("4.47700E+11", "is in scientific notation"),
    ],
)
def test_bad_address_shows_field_error(
    client: Client,
    campaign: Campaign,
    smtp_sink: RecordingHandler,
    sms_gateway: Gateway,
    address: str,
    error: str,
) -> None:
    response = client.post(send_url(campaign), {"address": address})

    html = response.content.decode()
    assert response.status_code == 422
    field = re.search(
        r'<input type="text" name="address"[^>]*>\s*<p class="field-error">([^<]*)</p>', html
    )
    assert field is not None, "no error after the address field"
    assert error in field.group(1).replace("&quot;", '"')
    assert 'aria-invalid="true"' in field.group(0)
    assert smtp_sink.messages == []
    assert sms_gateway.bodies == []


def test_phone_default_region(client: Client, campaign: Campaign, settings: Any) -> None:
    settings.PHONE_DEFAULT_REGION = "GB"

    response = client.post(send_url(campaign), {"address": "07911 123456"}, follow=True)

    assert "Test SMS sent to +447911123456." in response.content.decode()


@pytest.mark.parametrize(
    "status",
    [
        Campaign.Status.PROCESSING,
        Campaign.Status.PAUSED,
        Campaign.Status.COMPLETED,
        Campaign.Status.CANCELLED,
    ],
)
def test_rejects_campaign_not_pending(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler, status: str
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    before = rows(campaign)

    response = client.post(send_url(campaign), {"address": "tester@example.com"})

    html = response.content.decode()
    assert response.status_code == 422
    assert "test sends are for pending campaigns only" in alert(html)
    assert f"This campaign is {Campaign.Status(status).label.lower()}" in alert(html)
    # Once on the page: the paragraph that replaces the form is not shown as well.
    assert html.lower().count("test sends are for pending campaigns only") == 1
    assert "data-test-send-unavailable" not in html
    assert smtp_sink.messages == []
    assert rows(campaign) == before


@pytest.mark.parametrize(
    ("content", "address", "missing"),
    [
        ({"email_subject": ""}, "tester@example.com", "the campaign has no email subject"),
        ({"email_text": "  "}, "tester@example.com", "the campaign has no email text"),
        ({"sms_text": ""}, "+12025550143", "the campaign has no SMS text"),
    ],
)
def test_rejects_missing_content(
    client: Client,
    make_campaign: MakeCampaign,
    smtp_sink: RecordingHandler,
    sms_gateway: Gateway,
    content: dict[str, str],
    address: str,
    missing: str,
) -> None:
    campaign = make_campaign(recipients=RECIPIENTS, **{**CONTENT, **content})

    response = client.post(send_url(campaign), {"address": address})

    assert response.status_code == 422
    assert f"Not sent: {missing}." in alert(response.content.decode())
    assert smtp_sink.messages == []
    assert sms_gateway.bodies == []


def test_sms_needs_no_email_content(
    client: Client, make_campaign: MakeCampaign, sms_gateway: Gateway
) -> None:
    campaign = make_campaign(sms_text="Hi {{ first_name }}")

    response = client.post(send_url(campaign), {"address": "+12025550143"})

    assert response.status_code == 303
    assert sms_gateway.bodies[0]["text"] == "Hi Ada"


@pytest.mark.parametrize(
    ("entry_email", "entry_phone", "address", "cleaned_address"),
    [
        # Emails match ignoring case; the message shows the cleaned typed value.
        ("tester@example.com", "", "Tester@EXAMPLE.com", "Tester@example.com"),
        ("", "+12025550143", "(202) 555-0143", "+12025550143"),
    ],
)
def test_rejects_suppressed_address(
    client: Client,
    campaign: Campaign,
    smtp_sink: RecordingHandler,
    sms_gateway: Gateway,
    entry_email: str,
    entry_phone: str,
    address: str,
    cleaned_address: str,
) -> None:
    suppress(
        email=entry_email,
        phone=entry_phone,
        reason=SuppressionReason.OPERATOR,
        workspace_id=operator_workspace().pk,
    )

    response = client.post(send_url(campaign), {"address": address})

    assert response.status_code == 422
    assert f"Not sent: {cleaned_address} is on the suppression list." in alert(
        response.content.decode()
    )
    assert smtp_sink.messages == []
    assert sms_gateway.bodies == []


def test_rejects_stored_invalid_content(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(email_text="{% debug %}")

    response = client.post(send_url(campaign), {"address": "tester@example.com"})

    assert response.status_code == 422
    assert "Not sent: the saved content cannot be rendered" in alert(response.content.decode())
    assert smtp_sink.messages == []


@pytest.mark.parametrize(
    ("content", "address", "reason"),
    [
        ({"email_subject": "{{ phone }}"}, "tester@example.com", "the email subject is empty"),
        ({"sms_text": "{{ phone }}"}, "+12025550143", "the SMS text is empty"),
    ],
)
def test_blank_rendering_not_sent(
    client: Client,
    make_campaign: MakeCampaign,
    smtp_sink: RecordingHandler,
    sms_gateway: Gateway,
    content: dict[str, str],
    address: str,
    reason: str,
) -> None:
    # The test renders with the fields of the first recipient, Ada, who has no phone number.
    campaign = make_campaign(recipients=RECIPIENTS, **{**CONTENT, **content})

    response = client.post(send_url(campaign), {"address": address})

    assert response.status_code == 422
    assert f"Not sent: {reason} for this recipient, whose fields the test uses." in alert(
        response.content.decode()
    )
    assert smtp_sink.messages == []
    assert sms_gateway.bodies == []


def test_smtp_550_not_sent(
    client: Client,
    campaign: Campaign,
    smtp_sink: RecordingHandler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_sink.rcpt_reply = "550 5.1.1 No such user"
    before = rows(campaign)

    with caplog.at_level(logging.INFO):
        response = client.post(send_url(campaign), {"address": "tester@example.com"})

    html = response.content.decode()
    assert response.status_code == 422
    # An expected outcome: a WARNING line from the view, and no server error.
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.WARNING]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Not sent: recipient rejected: tester@example.com: 550 5.1.1 No such user." in alert(
        html
    )
    assert "The error may pass" not in html
    # The form keeps the typed address, to send again.
    assert 'value="tester@example.com"' in html
    assert smtp_sink.messages == []
    assert rows(campaign) == before


def test_smtp_451_suggests_retry(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    smtp_sink.rcpt_reply = "451 4.3.0 Mailbox busy"

    response = client.post(send_url(campaign), {"address": "tester@example.com"})

    assert response.status_code == 422
    errors = alert(response.content.decode())
    assert "Not sent: recipient rejected: tester@example.com: 451 4.3.0 Mailbox busy." in errors
    assert "The error may pass: try again later." in errors


def test_unexpected_error_logged(
    client: Client, campaign: Campaign, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SMS_DELIVERY_PROVIDER = f"{__name__}.BrokenProvider"

    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = client.post(send_url(campaign), {"address": "+12025550143"})

    assert response.status_code == 500
    assert "Not sent: an unexpected error occurred." in alert(response.content.decode())
    assert "provider bug" not in response.content.decode()
    errors = [
        record
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.ERROR
    ]
    assert len(errors) == 1
    # The log gets the traceback, with the error's message shortened as a failure reason is.
    logged = errors[0].getMessage()
    assert logged.startswith(
        f"campaign {campaign.pk}: test SMS failed\nTraceback (most recent call last):\n"
    )
    assert 'raise RuntimeError("provider bug")' in logged
    assert logged.endswith("\nRuntimeError: provider bug")


def test_invalid_provider_settings_named(client: Client, campaign: Campaign, settings: Any) -> None:
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.WebhookSmsProvider"
    settings.SMS_WEBHOOK_URL = ""

    response = client.post(send_url(campaign), {"address": "+12025550143"})

    assert response.status_code == 500
    errors = alert(response.content.decode())
    assert "Not sent: the delivery settings are invalid: SMS_WEBHOOK_URL=" in errors


def test_campaign_rows_unchanged(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler, sms_gateway: Gateway
) -> None:
    before = rows(campaign)

    email_response = client.post(send_url(campaign), {"address": "tester@example.com"})
    sms_response = client.post(send_url(campaign), {"address": "+12025550143"})

    assert email_response.status_code == 303
    assert sms_response.status_code == 303
    assert len(smtp_sink.messages) == 1
    assert len(sms_gateway.bodies) == 1
    assert rows(campaign) == before


def test_get_not_allowed(client: Client, campaign: Campaign) -> None:
    response = client.get(send_url(campaign))

    assert response.status_code == 405


def test_unknown_campaign_404(client: Client) -> None:
    response = client.post(
        reverse("campaigns:test_send", args=[999999]), {"address": "tester@example.com"}
    )

    assert response.status_code == 404


def test_csrf_token_required(
    campaign: Campaign, smtp_sink: RecordingHandler, signed_in: Callable[..., Client]
) -> None:
    client = signed_in(enforce_csrf_checks=True)

    response = client.post(send_url(campaign), {"address": "tester@example.com"})

    assert response.status_code == 403
    assert smtp_sink.messages == []


def test_preview_form_carries_csrf_token(
    campaign: Campaign, smtp_sink: RecordingHandler, signed_in: Callable[..., Client]
) -> None:
    client = signed_in(enforce_csrf_checks=True)
    page = client.get(preview_url(campaign)).content.decode()
    form = re.search(rf'<form method="post" action="{send_url(campaign)}".*?</form>', page, re.S)
    assert form is not None
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(0))
    assert csrf is not None

    response = client.post(
        send_url(campaign), {"address": "tester@example.com", "csrfmiddlewaretoken": csrf[1]}
    )

    assert response.status_code == 303
    assert len(smtp_sink.messages) == 1


def test_unsubscribe_link_suppresses_tester(
    client: Client, campaign: Campaign, smtp_sink: RecordingHandler
) -> None:
    client.post(send_url(campaign), {"address": "tester@example.com"})
    footer = FOOTER.search(body(parse(smtp_sink.messages[0]), "plain"))
    assert footer is not None

    response = client.post(urlsplit(footer.group(1)).path)

    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert entry.email == "tester@example.com"
    assert entry.source_campaign_id == campaign.pk
    # A test send to the tester's address is now rejected, and no recipient changed.
    again = client.post(send_url(campaign), {"address": "tester@example.com"})
    assert again.status_code == 422
    assert not Recipient.objects.filter(status=Recipient.Status.SUPPRESSED).exists()


def test_one_click_header_suppresses_tester(
    campaign: Campaign, smtp_sink: RecordingHandler, client: Client
) -> None:
    client.post(send_url(campaign), {"address": "tester@example.com"})
    header = parse(smtp_sink.messages[0])["List-Unsubscribe"]

    response = Client(enforce_csrf_checks=True).post(
        urlsplit(header.strip("<>")).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert Suppression.objects.get().email == "tester@example.com"
