"""The message preview: a campaign's content rendered for one of its recipients."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from campaigns.content import recipient_fields, render_message, sms_segments
from campaigns.models import Campaign, Recipient

logger = logging.getLogger(__name__)

# Recipients offered in the preview's list. Others are chosen by their id.
PREVIEW_CHOICES = 50


@require_GET
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Render the campaign's email and SMS for the recipient in `?recipient=<id>`.

    Without the parameter, the campaign's first recipient is used. An id that
    is not a number or not one of this campaign's recipients is a 404.
    """
    campaign = get_object_or_404(Campaign, pk=pk)
    # One more than the list shows, to learn whether the id box is needed.
    candidates = list(campaign.recipients.order_by("id")[: PREVIEW_CHOICES + 1])
    choices = candidates[:PREVIEW_CHOICES]
    requested = request.GET.get("recipient", "").strip()
    recipient: Recipient | None
    if requested:
        if not requested.isascii() or not requested.isdigit():
            raise Http404("The recipient id must be a number.")
        recipient = get_object_or_404(Recipient, pk=int(requested), campaign_id=campaign.pk)
        if recipient not in choices:
            choices.append(recipient)
    else:
        recipient = choices[0] if choices else None

    context: dict[str, object] = {
        "campaign": campaign,
        "recipient": recipient,
        "choices": choices,
        "more_recipients": len(candidates) > PREVIEW_CHOICES,
    }
    if recipient is not None:
        try:
            message = render_message(campaign, recipient_fields(recipient))
        except ValidationError as exc:
            # Content that a form would reject, written to the database directly.
            logger.warning("campaign %s: stored content does not compile: %s", pk, exc.messages)
            context["content_errors"] = exc.messages
        else:
            context["message"] = message
            context["sms"] = sms_segments(message.sms)
    return render(request, "campaigns/preview.html", context)
