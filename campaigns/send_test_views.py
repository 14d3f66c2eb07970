"""The test send: a pending campaign's message, sent to one address that the user types.

The message is rendered for the recipient that the preview shows, with that
recipient's fields, so `{{ email }}` and `{{ phone }}` show the recipient's
values rather than the typed address: the test shows what that recipient
would get. Only the delivery goes to the typed address, and its unsubscribe
link is signed for that address with recipient id 0, so following it
suppresses the tester's address. A campaign without recipients uses sample
fields.

The send happens in the request and writes nothing about the campaign: its
recipients, statuses, counts and delivery attempts stay as they were.
"""

from __future__ import annotations

import dataclasses
import logging
from uuid import uuid4

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.workspaces import get_campaign
from audit.models import Action, mask_address, record
from campaigns.content import recipient_fields, template_fields
from campaigns.forms import SendTestForm
from campaigns.models import Campaign, Recipient
from campaigns.preview_views import render_preview
from campaigns.views import see_other
from dispatch.messages import EMAIL, SMS, EmptyMessage, MessageContent, build_message
from dispatch.providers import Channel, Delivery, DeliveryError, OutboundMessage, get_provider
from dispatch.providers.base import traceback_with_short_message
from suppressions.models import is_suppressed

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Test] "

# Template fields of a test send from a campaign that has no recipients yet.
SAMPLE_FIELDS = template_fields("Ada Lovelace", "ada@example.com", "+12025550101")

_CHANNEL_LABELS = {EMAIL: "email", SMS: "SMS"}


@require_POST
def send_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the campaign's message to the address in the form, then return to the preview.

    Invalid input and rejected sends render the preview again with the
    reason next to the form: 422 for the input, the campaign's state and a
    delivery error that the provider reports, 500 for any other failure.
    A provider's rejection is an expected outcome of a test, not a fault of
    this server, so it is logged here at WARNING, and the status keeps
    django.request from logging it as a server error, as it does every 5xx.
    """
    campaign = get_campaign(request, pk)
    form = SendTestForm(request.POST, campaign=campaign)
    if not form.is_valid():
        return _form_page(request, campaign, form, status=422)

    recipient: Recipient | None = form.cleaned_data["recipient"]
    if recipient is None:
        recipient = campaign.recipients.order_by("id").first()
    email, phone = form.cleaned_data["email"], form.cleaned_data["phone"]
    channel: Channel = EMAIL if email else SMS
    address = email or phone
    label = _CHANNEL_LABELS[channel]

    rejection = _rejection(campaign, channel, email, phone)
    if rejection:
        form.add_error(None, rejection)
        return _form_page(request, campaign, form, recipient, status=422)

    key = uuid4().hex
    fields = recipient_fields(recipient) if recipient else dict(SAMPLE_FIELDS)
    try:
        message = build_message(
            MessageContent.of(campaign),
            fields,
            channel=channel,
            to=address,
            recipient_id=0,
            message_id_part=f"test-{key}",
        )
    except ValidationError as exc:
        form.add_error(
            None, f"Not sent: the saved content cannot be rendered: {' '.join(exc.messages)}"
        )
        return _form_page(request, campaign, form, recipient, status=422)
    except EmptyMessage as exc:
        form.add_error(
            None,
            f"Not sent: {exc}, whose fields the test uses. Dispatch would fail this recipient "
            "too. Edit the content, for example with the default filter.",
        )
        return _form_page(request, campaign, form, recipient, status=422)
    if channel == EMAIL:
        message = dataclasses.replace(message, subject=SUBJECT_PREFIX + message.subject)

    try:
        message_id = get_provider().deliver(_delivery(campaign, fields, message, key))
    except DeliveryError as exc:
        kind = "transient" if exc.transient else "permanent"
        logger.warning("campaign %s: test %s not sent (%s error): %s", pk, label, kind, exc)
        retry_hint = " The error may pass: try again later." if exc.transient else ""
        form.add_error(None, f"Not sent: {str(exc).rstrip('.')}.{retry_hint}")
        return _form_page(request, campaign, form, recipient, status=422)
    except ImproperlyConfigured as exc:
        logger.error("campaign %s: test %s not sent: %s", pk, label, exc)
        form.add_error(None, f"Not sent: the delivery settings are invalid: {exc}")
        return _form_page(request, campaign, form, recipient, status=500)
    except Exception as exc:
        # The request is the boundary: the user gets a page, and the log gets the traceback.
        logger.error(
            "campaign %s: test %s failed\n%s", pk, label, traceback_with_short_message(exc)
        )
        form.add_error(None, "Not sent: an unexpected error occurred. The server log has details.")
        return _form_page(request, campaign, form, recipient, status=500)

    logger.info(
        "campaign %s: test %s sent with the fields of %s, provider message id %s",
        pk,
        label,
        f"recipient {recipient.pk}" if recipient else "a sample recipient",
        message_id,
    )
    # The log keeps a masked address: the tester's address is personal data.
    record(campaign, Action.TEST_SENT, request.user, f"{label} to {mask_address(address)}")
    messages.success(request, f"Test {label} sent to {address}. Provider message id: {message_id}")
    return see_other(_preview_url(campaign, recipient))


def _rejection(campaign: Campaign, channel: Channel, email: str, phone: str) -> str:
    """Return why the test send cannot go out, or "" when it can."""
    if campaign.status != Campaign.Status.PENDING:
        return (
            "Not sent: test sends are for pending campaigns only. This campaign is "
            f"{campaign.get_status_display().lower()}, so its content can no longer change."
        )
    missing = MessageContent.of(campaign).missing(channel)
    if missing:
        return f"Not sent: {missing}. Edit the campaign to add it, then send the test again."
    if is_suppressed(email, phone, workspace_id=campaign.workspace_id):
        return (
            f"Not sent: {email or phone} is on the suppression list. Remove it from the list "
            "to send tests to it, or use another address."
        )
    return ""


def _delivery(
    campaign: Campaign, fields: dict[str, str], message: OutboundMessage, key: str
) -> Delivery:
    # Recipient id 0 names no recipient. The contact fields are the typed
    # address, which the simulated provider's failure rules read.
    return Delivery(
        campaign_id=campaign.pk,
        recipient_id=0,
        attempt=1,
        name=fields.get("name", ""),
        email=message.to if message.channel == EMAIL else "",
        phone_number=message.to if message.channel == SMS else "",
        idempotency_key=f"campaign-{campaign.pk}-test-{key}",
        message=message,
        channel=message.channel,
    )


def _form_page(
    request: HttpRequest,
    campaign: Campaign,
    form: SendTestForm,
    recipient: Recipient | None = None,
    *,
    status: int,
) -> HttpResponse:
    if recipient is None and form.is_bound:
        # The recipient id passed validation even when the address did not.
        recipient = form.cleaned_data.get("recipient")
    return render_preview(request, campaign, recipient, form, status=status)


def _preview_url(campaign: Campaign, recipient: Recipient | None) -> str:
    url = reverse("campaigns:preview", args=[campaign.pk])
    return f"{url}?recipient={recipient.pk}" if recipient else url
