"""The full activity log of a campaign, a page at a time."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.workspaces import get_campaign
from audit.models import AuditEvent
from campaigns.models import Campaign

EVENTS_PER_PAGE = 50
# The campaign page shows this many of the newest events.
EVENTS_ON_CAMPAIGN_PAGE = 20


def latest_events(campaign: Campaign) -> tuple[list[AuditEvent], bool]:
    """Return the newest events shown on the campaign page, and whether there are more."""
    events = list(
        campaign.audit_events.order_by("-created_at", "-id")[: EVENTS_ON_CAMPAIGN_PAGE + 1]
    )
    return events[:EVENTS_ON_CAMPAIGN_PAGE], len(events) > EVENTS_ON_CAMPAIGN_PAGE


@require_GET
def campaign_log(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    events = campaign.audit_events.order_by("-created_at", "-id")
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "audit/campaign_log.html", {"campaign": campaign, "page": page})
