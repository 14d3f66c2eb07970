"""The message preview: a campaign's content rendered for one of its recipients."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.workspaces import get_campaign
from campaigns.content import RenderedContent, recipient_fields, render_email, sms_segments
from campaigns.forms import SendTestForm
from campaigns.models import Campaign, Recipient
from dispatch.message_frames import message_frame, message_html_response
from dispatch.messages import (
    EMAIL,
    SMS,
    EmptyMessage,
    MessageContent,
    build_message,
    choose_channel,
)
from dispatch.providers.base import Channel
from suppressions.tokens import unsubscribe_urls

logger = logging.getLogger(__name__)

# Recipients offered in the preview's list. Others are chosen by their id.
PREVIEW_CHOICES = 50


@require_GET
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Render the campaign's email and SMS for the recipient in `?recipient=<id>`.

    Without the parameter, the campaign's first recipient is used. An id that
    is not a number or not one of this campaign's recipients is a 404.
    """
    campaign = get_campaign(request, pk)
    recipient = _requested_recipient(request, campaign)
    return render_preview(request, campaign, recipient, SendTestForm(campaign=campaign))


@require_GET
@message_frame
def preview_html(request: HttpRequest, pk: int) -> HttpResponse:
    """Serve the email's HTML for the preview page's frame, for `?recipient=<id>`.

    The recipient is chosen as on the preview page. 404 when the campaign has
    no recipient, no HTML body, or content that does not render.
    """
    campaign = get_campaign(request, pk)
    recipient = _requested_recipient(request, campaign)
    if recipient is None:
        recipient = campaign.recipients.order_by("id").first()
    if recipient is None:
        raise Http404("The campaign has no recipients to preview the message for.")
    channel = choose_channel(recipient.email, recipient.phone_number, campaign.prefer_sms)
    try:
        message, _empty_parts = _render_as_sent(campaign, recipient, channel)
    except ValidationError as exc:
        raise Http404("The saved content cannot be rendered.") from exc
    if not message.html:
        raise Http404("The campaign's email has no HTML body.")
    return message_html_response(message.html)


def _requested_recipient(request: HttpRequest, campaign: Campaign) -> Recipient | None:
    """Return the campaign's recipient named by `?recipient=<id>`, or None without one.

    An id that is not a number or not one of this campaign's recipients is a 404.
    """
    requested = request.GET.get("recipient", "").strip()
    if not requested:
        return None
    if not requested.isascii() or not requested.isdigit():
        raise Http404("The recipient id must be a number.")
    return get_object_or_404(Recipient, pk=int(requested), campaign_id=campaign.pk)


def render_preview(
    request: HttpRequest,
    campaign: Campaign,
    recipient: Recipient | None,
    test_form: SendTestForm,
    *,
    status: int = 200,
) -> HttpResponse:
    """Render the preview page for `recipient`, or for the campaign's first recipient when None.

    `test_form` is the "Send a test" form, bound when the page shows its errors.
    """
    # One more than the list shows, to learn whether the id box is needed.
    candidates = list(campaign.recipients.order_by("id")[: PREVIEW_CHOICES + 1])
    choices = candidates[:PREVIEW_CHOICES]
    if recipient is None:
        recipient = choices[0] if choices else None
    elif recipient not in choices:
        choices.append(recipient)

    context: dict[str, object] = {
        "campaign": campaign,
        "recipient": recipient,
        "choices": choices,
        "more_recipients": len(candidates) > PREVIEW_CHOICES,
        "test_form": test_form,
    }
    if recipient is not None:
        channel = choose_channel(recipient.email, recipient.phone_number, campaign.prefer_sms)
        context["channel"] = channel
        try:
            message, empty_parts = _render_as_sent(campaign, recipient, channel)
        except ValidationError as exc:
            # Content that a form would reject, written to the database directly.
            logger.warning(
                "campaign %s: stored content does not compile: %s", campaign.pk, exc.messages
            )
            context["content_errors"] = exc.messages
        else:
            context["message"] = message
            context["empty_parts"] = empty_parts
            context["sms"] = sms_segments(message.sms)
    return render(request, "campaigns/preview.html", context, status=status)


def _render_as_sent(
    campaign: Campaign, recipient: Recipient, channel: Channel
) -> tuple[RenderedContent, dict[Channel, str]]:
    """Render the email and the SMS as `build_message` does when dispatch sends them.

    Each part carries the unsubscribe link signed for the address that it
    goes to. When the recipient lacks that address, the part cannot be sent,
    and its link is signed for the address of the recipient's `channel`
    instead. An email that lacks its subject or text, or renders one of them
    blank, gets no unsubscribe footer, so that the page can show what is
    missing. Also returns, per channel, why a part that renders blank for
    this recipient cannot be sent (EmptyMessage).
    """
    content = MessageContent.of(campaign)
    fields = recipient_fields(recipient)
    channel_address = recipient.email if channel == EMAIL else recipient.phone_number
    email_to = recipient.email or channel_address
    empty_parts: dict[Channel, str] = {}

    email = None
    if not content.missing(EMAIL):
        try:
            email = build_message(
                content, fields, channel=EMAIL, to=email_to, recipient_id=recipient.pk
            )
        except EmptyMessage as exc:
            empty_parts[EMAIL] = str(exc)
    if email is None:
        page_url = unsubscribe_urls(
            campaign.pk, recipient.pk, email_to, workspace_id=campaign.workspace_id
        )[0]
        subject, text, html = render_email(content, {**fields, "unsubscribe_url": page_url})
    else:
        subject, text, html = email.subject, email.text, email.html

    sms_text = ""
    if not content.missing(SMS):
        try:
            sms = build_message(
                content,
                fields,
                channel=SMS,
                to=recipient.phone_number or channel_address,
                recipient_id=recipient.pk,
            )
        except EmptyMessage as exc:
            empty_parts[SMS] = str(exc)
        else:
            sms_text = sms.text
    rendered = RenderedContent(subject=subject, text=text, html=html, sms=sms_text)
    return rendered, empty_parts
