"""The create_demo_campaign management command."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from campaigns.content import (
    recipient_fields,
    render_message,
    sms_segments,
    validate_html_template,
    validate_text_template,
)
from campaigns.models import Campaign, DeliveryAttempt, Recipient
from dispatch.engine import run_campaign

pytestmark = pytest.mark.django_db

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def create_demo(*args: str) -> tuple[Campaign, str]:
    """Run the command and return the campaign it created and its output."""
    out = StringIO()
    call_command("create_demo_campaign", *args, stdout=out)
    return Campaign.objects.get(), out.getvalue()


def test_demo_creates_pending_campaign(settings: Any) -> None:
    campaign, output = create_demo()

    assert campaign.status == Campaign.Status.PENDING
    assert campaign.recipients.count() == 26
    failing = campaign.recipients.filter(
        email__endswith="@" + settings.DELIVERY_FAIL_EMAIL_DOMAIN
    ).count()
    assert failing == 4
    assert "with 26 recipients (4 set to fail, 1 set to fail once and succeed on retry)." in output
    assert f"/campaigns/{campaign.pk}" in output


def test_demo_adds_one_flaky_recipient(settings: Any) -> None:
    settings.DELIVERY_FLAKY_EMAIL_DOMAIN = "slow.example.org"

    campaign, _output = create_demo()

    [flaky] = campaign.recipients.filter(email__endswith="@slow.example.org")
    assert flaky.email == "kathleen@slow.example.org"
    assert flaky.name == "Kathleen Booth"
    # It should be email-only, so that it is sent by email even with prefer_sms on.
    assert flaky.phone_number == ""


def test_demo_mixes_email_and_phone_recipients() -> None:
    campaign, _output = create_demo()

    recipients = campaign.recipients.all()
    assert recipients.filter(email="").exists()
    assert recipients.filter(phone_number="").exists()
    assert recipients.exclude(email="").exclude(phone_number="").exists()


def test_demo_content_passes_validation() -> None:
    campaign, _output = create_demo()

    for source in (campaign.email_subject, campaign.email_text, campaign.sms_text):
        assert "first_name" in source
        validate_text_template(source)
    assert "first_name" in campaign.email_html
    validate_html_template(campaign.email_html)
    # It should pass the model's validators too, as a save through the form would.
    campaign.full_clean()


def test_demo_content_is_personal() -> None:
    campaign, _output = create_demo()
    ada = campaign.recipients.get(name="Ada Lovelace")
    unsubscribe_url = "https://campaigns.example.com/u/token?a=1&b=2"

    rendered = render_message(campaign, recipient_fields(ada, unsubscribe_url))

    assert rendered.subject == "Ada, your Campaign Dispatcher demo message"
    assert rendered.text.startswith("Hello Ada,\n")
    assert "addressed to\nAda Lovelace at ada@example.com." in rendered.text
    assert f"To stop receiving these messages: {unsubscribe_url}" in rendered.text
    assert "<p>Hello Ada,</p>" in rendered.html
    assert "Ada Lovelace at ada@example.com" in rendered.html
    # It should escape the link in the HTML body, as for every recipient field.
    assert 'href="https://campaigns.example.com/u/token?a=1&amp;b=2"' in rendered.html
    assert rendered.sms == "Hi Ada, this is the Campaign Dispatcher demo SMS."


def test_demo_sms_fits_one_segment() -> None:
    campaign, _output = create_demo()

    for recipient in campaign.recipients.exclude(phone_number=""):
        sms = render_message(campaign, recipient_fields(recipient)).sms
        assert sms_segments(sms).segments == 1, (recipient.name, sms)


def test_demo_output_points_to_mail_sink(settings: Any) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": {"host": "127.0.0.1", "port": 1025}}
    }

    _campaign, output = create_demo()

    assert (
        "Emails go to the local SMTP sink at 127.0.0.1:1025. "
        "Read them at http://127.0.0.1:8000/dev/mail/ (while DEBUG is on)."
    ) in output


@pytest.mark.parametrize(
    ("mailer", "expected"),
    [
        (
            {"BACKEND": SMTP_BACKEND, "OPTIONS": {"host": "smtp.example.com", "port": 587}},
            "Emails go to the SMTP server at smtp.example.com:587, not to the local SMTP sink.",
        ),
        (
            {"BACKEND": "anymail.backends.postmark.EmailBackend", "OPTIONS": {}},
            "Emails go through anymail.backends.postmark.EmailBackend, not to the local SMTP sink.",
        ),
    ],
)
def test_demo_output_names_other_mailers(
    settings: Any, mailer: dict[str, Any], expected: str
) -> None:
    settings.MAILERS = {"default": mailer}

    _campaign, output = create_demo()

    assert expected in output
    assert "/dev/mail/" not in output


def test_demo_dispatch_shows_sent_failed_and_retry(settings: Any) -> None:
    # The simulated provider fails the same recipients as the development
    # SMTP sink's rules. A retry base of 0 makes the flaky recipient's retry
    # due at once, so the loop delivers it before it exits.
    settings.DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    campaign, _output = create_demo("--name", "Demo run")
    campaign.start()

    run_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.progress().failed == 4
    assert campaign.progress().sent == 22
    flaky = campaign.recipients.get(email__endswith="@" + settings.DELIVERY_FLAKY_EMAIL_DOMAIN)
    assert flaky.status == Recipient.Status.SENT
    outcomes = list(
        DeliveryAttempt.objects.filter(recipient=flaky)
        .order_by("number")
        .values_list("outcome", flat=True)
    )
    assert outcomes == [DeliveryAttempt.Outcome.TRANSIENT_ERROR, DeliveryAttempt.Outcome.SENT]
