"""The server-sent-events view that streams a campaign page's live updates."""

from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from campaigns.models import Campaign
from live import streams
from live.feeds import CampaignFeed

# A page shows at most this many recipients, with room to spare.
MAX_VISIBLE_ROWS = 200

_IDS = re.compile(r"\d{1,18}(,\d{1,18})*")


async def campaign_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Stream a campaign page's live updates as `text/event-stream`.

    Query parameters: `ids`, the comma-separated ids of the recipients that
    the page shows (rows of other recipients are not sent), and `after`, the
    stream position that the page was rendered at. A reconnecting browser's
    `Last-Event-ID` header takes the place of `after`. 404 for an unknown
    campaign, 400 for malformed parameters.
    """
    if not await Campaign.objects.filter(pk=pk).aexists():
        raise Http404("Campaign not found.")
    ids_param = request.GET.get("ids", "")
    if ids_param and not _IDS.fullmatch(ids_param):
        return _bad_request("ids must be recipient ids separated by commas, such as 12,13,14.")
    recipient_ids = frozenset(int(part) for part in ids_param.split(",") if part)
    if len(recipient_ids) > MAX_VISIBLE_ROWS:
        return _bad_request(f"ids may name at most {MAX_VISIBLE_ROWS} recipients.")

    position = request.headers.get("Last-Event-ID") or request.GET.get("after")
    if position is not None and streams.parse_entry_id(position) is None:
        # An id that this server never sent, perhaps from another version:
        # start from the current state rather than refuse a reconnect.
        position = None

    feed = CampaignFeed(pk, recipient_ids, position)
    response = StreamingHttpResponse(feed.events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies not to buffer the stream.
    response["X-Accel-Buffering"] = "no"
    return response


def _bad_request(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
