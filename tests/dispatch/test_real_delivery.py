"""Dispatch through the default providers: email over real SMTP, SMS simulated.

The SMTP server is aiosmtpd on loopback (tests/smtp.py), so messages pass
through Django's SMTP backend and the wire as they do in production.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from accounts.models import Workspace
from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch import claims
from dispatch.engine import run_campaign
from suppressions.models import Suppression, SuppressionReason, suppress
from tests.dispatch.fakes import engine_settings
from tests.factories import operator_workspace
from tests.smtp import RecordingHandler

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

ENGINE = engine_settings(concurrency=2, batch_size=5, max_attempts=3)

CONTENT = {
    "email_subject": "Hello {{ first_name }}",
    "email_text": "Dear {{ name }},\nyour address is {{ email }}.",
    "email_html": "<html><body><p>Dear {{ name }}</p></body></html>",
    "sms_text": "Hi {{ first_name }}, news at {{ phone }}",
}


@pytest.fixture
def real_providers(settings: Any, smtp_sink: RecordingHandler) -> RecordingHandler:
    """The providers of the default setup, with email going to the test's SMTP server."""
    settings.DELIVERY_PROVIDER = "dispatch.providers.ChannelRouter"
    settings.EMAIL_DELIVERY_PROVIDER = "dispatch.providers.EmailBackendProvider"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.DEFAULT_FROM_EMAIL = "Shop <news@shop.example.com>"
    settings.SITE_URL = "https://mail.shop.example.com"
    return smtp_sink


def received(handler: RecordingHandler) -> dict[str, EmailMessage]:
    """The messages the SMTP server got, by their To address."""
    messages = [
        email.message_from_bytes(raw, policy=email.policy.default) for raw in handler.messages
    ]
    parsed = [message for message in messages if isinstance(message, EmailMessage)]
    return {str(message["To"]): message for message in parsed}


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_subtype() == subtype
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def raw_header(raw: bytes, name: str) -> str:
    """The header `name` as the SMTP server received it, with the CRLF of any folding."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found: list[str] = []
    for line in head.split("\r\n"):
        if found and line[:1] in (" ", "\t"):
            found[-1] += "\r\n" + line
        elif line.lower().startswith(name.lower() + ":"):
            found.append(line)
        elif found:
            break
    assert len(found) == 1, f"expected one {name} header, found {found}"
    return found[0]


def dispatch(campaign: Campaign) -> None:
    assert campaign.start()
    run_campaign(campaign.pk, engine_settings=ENGINE)


def test_email_goes_over_smtp_personalised_with_headers(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(
        recipients=[{"name": "Ada <b>Lovelace</b> & Co", "email": "ada@example.com"}],
        **CONTENT,
    )
    ada = campaign.recipients.get()

    dispatch(campaign)

    message = received(real_providers)["ada@example.com"]
    assert message["Subject"] == "Hello Ada"
    assert message["From"] == "Shop <news@shop.example.com>"
    text = body(message, "plain")
    assert text.startswith("Dear Ada <b>Lovelace</b> & Co,\nyour address is ada@example.com.")
    html = body(message, "html")
    assert "<p>Dear Ada &lt;b&gt;Lovelace&lt;/b&gt; &amp; Co</p>" in html
    assert "<b>" not in html

    expected_id = f"<campaign-{campaign.pk}-recipient-{ada.pk}@shop.example.com>"
    assert message["Message-ID"] == expected_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = str(message["List-Unsubscribe"])
    assert one_click.startswith("<https://mail.shop.example.com/u/")
    assert one_click.endswith("/one-click>")
    # The footer links the confirmation page of the same token.
    page_url = one_click[1:-1].removesuffix("/one-click")
    assert f"To stop receiving these messages: {page_url}" in text
    assert f'<a href="{page_url}">Unsubscribe</a>' in html
    assert html.index("Unsubscribe") < html.index("</body>")

    ada.refresh_from_db()
    assert ada.status == Recipient.Status.SENT
    assert ada.channel == "email"
    assert ada.provider_message_id == expected_id
    attempt = DeliveryAttempt.objects.get(recipient=ada)
    assert attempt.provider_message_id == expected_id
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


def test_headers_not_encoded_on_the_wire(
    real_providers: RecordingHandler, make_campaign: MakeCampaign, settings: Any
) -> None:
    settings.SITE_URL = "https://campaigns.example.com"
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}], **CONTENT)
    ada = campaign.recipients.get()

    dispatch(campaign)

    [raw] = real_providers.messages
    unsubscribe = raw_header(raw, "List-Unsubscribe")
    # Longer than the 78 characters at which Python's email package folds.
    assert len(unsubscribe) > 78
    assert unsubscribe.startswith("List-Unsubscribe: <https://campaigns.example.com/u/")
    assert unsubscribe.endswith("/one-click>")
    assert "=?utf-8?" not in unsubscribe.lower()
    assert "\r\n" not in unsubscribe
    message_id = raw_header(raw, "Message-ID")
    assert "=?utf-8?" not in message_id.lower()
    assert message_id.split(":", 1)[1].strip() == (
        f"<campaign-{campaign.pk}-recipient-{ada.pk}@shop.example.com>"
    )


def test_channel_is_chosen_per_recipient_and_shown(
    real_providers: RecordingHandler, make_campaign: MakeCampaign, client: Client
) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Grace", "phone_number": "+12025550101"},
            {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
        ],
        **CONTENT,
    )

    dispatch(campaign)

    channels = dict(campaign.recipients.values_list("name", "channel"))
    assert channels == {"Ada": "email", "Grace": "sms", "Alan": "email"}
    assert set(received(real_providers)) == {"ada@example.com", "alan@example.com"}
    assert set(campaign.recipients.values_list("status", flat=True)) == {"sent"}
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert html.count('data-channel="email">by email</span>') == 2
    assert html.count('data-channel="sms">by SMS</span>') == 1


def test_prefer_sms_sends_sms_to_recipients_with_both(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
        ],
        prefer_sms=True,
        **CONTENT,
    )

    dispatch(campaign)

    channels = dict(campaign.recipients.values_list("name", "channel"))
    assert channels == {"Ada": "email", "Alan": "sms"}
    assert set(received(real_providers)) == {"ada@example.com"}


def test_channel_is_kept_for_retries(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        recipients=[{"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"}]
    )
    assert campaign.start()
    [claim] = claims.claim_batch(campaign.pk, 10, lease_seconds=60)
    assert claim.channel == "email"
    claims.release_claims(campaign.pk, [claim])
    # Preferring SMS now changes nothing for a recipient whose channel was chosen.
    Campaign.objects.filter(pk=campaign.pk).update(prefer_sms=True)

    [again] = claims.claim_batch(campaign.pk, 10, lease_seconds=60)

    assert again.channel == "email"
    assert again.address == "alan@example.com"


def test_smtp_reply_codes_retry_or_fail(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Grace", "email": "grace@example.com"},
        ],
        **CONTENT,
    )
    real_providers.rcpt_replies["ada@example.com"] = [
        "451 4.3.0 Mailbox busy, try later",
        "421 4.7.0 Too many connections",
    ]
    real_providers.rcpt_replies["grace@example.com"] = ["550 5.1.1 No such user"]

    dispatch(campaign)

    ada = campaign.recipients.get(email="ada@example.com")
    assert ada.status == Recipient.Status.SENT
    assert ada.attempts == 3
    outcomes = list(
        DeliveryAttempt.objects.filter(recipient=ada)
        .order_by("number")
        .values_list("outcome", "error")
    )
    assert [outcome for outcome, _error in outcomes] == [
        "transient_error",
        "transient_error",
        "sent",
    ]
    assert "451 4.3.0 Mailbox busy" in outcomes[0][1]

    grace = campaign.recipients.get(email="grace@example.com")
    assert grace.status == Recipient.Status.FAILED
    assert grace.attempts == 1
    assert "550 5.1.1 No such user" in grace.failure_reason
    assert set(received(real_providers)) == {"ada@example.com"}


def test_unsubscribed_address_suppressed_later(
    real_providers: RecordingHandler, make_campaign: MakeCampaign, client: Client
) -> None:
    first = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}], **CONTENT)
    dispatch(first)
    header = str(received(real_providers)["ada@example.com"]["List-Unsubscribe"])
    one_click_path = urlsplit(header[1:-1]).path

    # What a mail client does for RFC 8058: a POST without cookies or CSRF token.
    response = Client(enforce_csrf_checks=True).post(
        one_click_path, {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert (entry.email, entry.reason) == ("ada@example.com", SuppressionReason.UNSUBSCRIBED)

    real_providers.messages.clear()
    later = make_campaign(
        name="Later",
        recipients=[
            {"name": "Ada", "email": "ADA@example.com", "phone_number": "+12025550101"},
            {"name": "Grace", "email": "grace@example.com"},
        ],
        **CONTENT,
    )
    dispatch(later)

    ada = later.recipients.get(name="Ada")
    assert ada.status == Recipient.Status.SUPPRESSED
    assert ada.failure_reason == "not sent: the email address is on the suppression list"
    assert ada.attempts == 0
    assert not DeliveryAttempt.objects.filter(recipient=ada).exists()
    assert set(received(real_providers)) == {"grace@example.com"}
    assert Campaign.objects.get(pk=later.pk).status == Campaign.Status.COMPLETED
    html = client.get(later.get_absolute_url()).content.decode()
    assert "not sent: the email address is on the suppression list" in html


def test_suppressed_phone_stops_email_to_the_same_recipient(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    suppress(
        phone="+1 (202) 555-0101",
        reason=SuppressionReason.OPERATOR,
        workspace_id=operator_workspace().pk,
    )
    campaign = make_campaign(
        recipients=[{"name": "Ada", "email": "ada@example.com", "phone_number": "+12025550101"}],
        **CONTENT,
    )

    dispatch(campaign)

    ada = campaign.recipients.get()
    assert ada.status == Recipient.Status.SUPPRESSED
    assert ada.failure_reason == "not sent: the phone number is on the suppression list"
    assert real_providers.messages == []


def test_suppression_list_belongs_to_one_workspace(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    elsewhere = Workspace.objects.create(name="Elsewhere")
    suppress(email="ada@example.com", reason=SuppressionReason.OPERATOR, workspace_id=elsewhere.pk)
    ours = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}], **CONTENT)
    theirs = make_campaign(
        name="Theirs",
        recipients=[{"name": "Ada", "email": "ada@example.com"}],
        workspace=elsewhere,
        **CONTENT,
    )

    dispatch(ours)
    dispatch(theirs)

    # The other workspace's list stops its own campaign only.
    assert ours.recipients.get().status == Recipient.Status.SENT
    assert theirs.recipients.get().status == Recipient.Status.SUPPRESSED
    assert list(received(real_providers)) == ["ada@example.com"]


def test_non_ascii_local_part_fails_readably(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    # The form and the import reject such an address; Recipient.save() keeps it.
    campaign = make_campaign(
        recipients=[
            {"name": "Zoë", "email": "zoë@example.com"},
            {"name": "Ada", "email": "ada@example.com"},
        ],
        **CONTENT,
    )

    dispatch(campaign)

    zoe = campaign.recipients.get(name="Zoë")
    assert zoe.status == Recipient.Status.FAILED
    assert zoe.attempts == 1
    assert zoe.failure_reason == (
        "the email address zoë@example.com has non-ASCII characters before the @, "
        "which can only be sent with SMTPUTF8, and this app does not use it"
    )
    assert set(received(real_providers)) == {"ada@example.com"}


@pytest.mark.parametrize(
    ("content", "recipient", "reason"),
    [
        (
            {"email_subject": "", "email_text": "Hi"},
            {"email": "ada@example.com"},
            "not sent: the campaign has no email subject",
        ),
        (
            {"sms_text": " "},
            {"phone_number": "+12025550101"},
            "not sent: the campaign has no SMS text",
        ),
    ],
)
def test_content_removed_after_dispatch_fails_recipient(
    real_providers: RecordingHandler,
    make_campaign: MakeCampaign,
    content: dict[str, str],
    recipient: dict[str, str],
    reason: str,
) -> None:
    # The form and start() refuse such content; a direct database write does not.
    campaign = make_campaign(recipients=[{"name": "Ada", **recipient}], **CONTENT)
    assert campaign.start()
    Campaign.objects.filter(pk=campaign.pk).update(**content)

    run_campaign(campaign.pk, engine_settings=ENGINE)

    ada = campaign.recipients.get()
    assert (ada.status, ada.failure_reason) == (Recipient.Status.FAILED, reason)
    assert real_providers.messages == []


@pytest.mark.parametrize(
    ("content", "failing", "reason", "emails"),
    [
        (
            {"email_subject": "{{ phone }}"},
            "Ada",
            "not sent: the email subject is empty for this recipient",
            {"alan@example.com"},
        ),
        (
            {"email_text": "{% if phone %}Call {{ phone }}{% endif %}\n"},
            "Ada",
            "not sent: the email text is empty for this recipient",
            {"alan@example.com"},
        ),
        (
            {"sms_text": " {{ email }} "},
            "Grace",
            "not sent: the SMS text is empty for this recipient",
            {"ada@example.com", "alan@example.com"},
        ),
    ],
)
def test_content_rendering_blank_fails_recipient(
    real_providers: RecordingHandler,
    make_campaign: MakeCampaign,
    content: dict[str, str],
    failing: str,
    reason: str,
    emails: set[str],
) -> None:
    # Ada gets the email and Grace the SMS; neither has the other's address.
    # Alan has both, so every part renders for him.
    campaign = make_campaign(
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Grace", "phone_number": "+12025550101"},
            {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
        ],
        **{**CONTENT, **content},
    )

    dispatch(campaign)

    failed = campaign.recipients.get(name=failing)
    assert (failed.status, failed.failure_reason) == (Recipient.Status.FAILED, reason)
    attempt = DeliveryAttempt.objects.get(recipient=failed)
    assert (attempt.outcome, attempt.error) == (DeliveryAttempt.Outcome.PERMANENT_ERROR, reason)
    assert campaign.recipients.get(name="Alan").status == Recipient.Status.SENT
    assert set(received(real_providers)) == emails


def test_html_rendering_blank_sends_plain_text(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(
        recipients=[{"name": "Ada", "email": "ada@example.com"}],
        **{**CONTENT, "email_html": "{% if phone %}<p>Call {{ phone }}</p>{% endif %}\n"},
    )

    dispatch(campaign)

    message = received(real_providers)["ada@example.com"]
    assert message.get_content_type() == "text/plain"
    assert campaign.recipients.get().status == Recipient.Status.SENT


def test_stored_content_that_does_not_compile_fails_recipient(
    real_providers: RecordingHandler, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}], **CONTENT)
    assert campaign.start()
    Campaign.objects.filter(pk=campaign.pk).update(email_text="{{ settings.SECRET_KEY }}")

    run_campaign(campaign.pk, engine_settings=ENGINE)

    ada = campaign.recipients.get()
    assert ada.status == Recipient.Status.FAILED
    assert ada.failure_reason.startswith(
        "not sent: the campaign's content does not compile: Line 1: unknown variable"
    )
    assert django_settings.SECRET_KEY not in ada.failure_reason
    assert real_providers.messages == []


@pytest.mark.parametrize(
    ("content", "recipients", "expected"),
    [
        (
            {"email_subject": "", "email_text": ""},
            [{"email": "ada@example.com"}],
            [
                "Write an email subject and text: the campaign has no email subject or text, "
                "and recipients with an email address get an email."
            ],
        ),
        (
            {"email_text": " "},
            [{"email": "ada@example.com"}],
            [
                "Write an email text: the campaign has no email text, "
                "and recipients with an email address get an email."
            ],
        ),
        (
            {"email_subject": ""},
            [{"email": "ada@example.com"}],
            [
                "Write an email subject: the campaign has no email subject, "
                "and recipients with an email address get an email."
            ],
        ),
        (
            {"sms_text": ""},
            [{"phone_number": "+12025550101"}],
            [
                "Write an SMS text: the campaign has none, and recipients without an email "
                "address get an SMS."
            ],
        ),
        (
            {"sms_text": "", "prefer_sms": True},
            [{"email": "ada@example.com", "phone_number": "+12025550101"}],
            [
                "Write an SMS text: the campaign has none, and recipients with a phone "
                "number get an SMS, because SMS is preferred."
            ],
        ),
        # Content that no recipient needs is not asked for.
        ({"sms_text": ""}, [{"email": "ada@example.com", "phone_number": "+12025550101"}], []),
        (
            {"email_subject": "", "email_text": "", "prefer_sms": True},
            [{"email": "ada@example.com", "phone_number": "+12025550101"}],
            [],
        ),
    ],
)
def test_dispatch_refused_while_content_is_missing(
    make_campaign: MakeCampaign,
    client: Client,
    content: dict[str, Any],
    recipients: list[dict[str, str]],
    expected: list[str],
) -> None:
    campaign = make_campaign(recipients=recipients, **{**CONTENT, **content})

    assert campaign.missing_content() == expected
    page = client.get(campaign.get_absolute_url()).content.decode()
    response = client.post(reverse("campaigns:dispatch", args=[campaign.pk]), follow=True)

    campaign.refresh_from_db()
    html = response.content.decode()
    if expected:
        assert campaign.status == Campaign.Status.PENDING
        assert "data-missing-content" in page
        for problem in expected:
            assert f"Not dispatched. {problem}" in html
    else:
        assert campaign.status == Campaign.Status.PROCESSING
        assert "data-missing-content" not in page
