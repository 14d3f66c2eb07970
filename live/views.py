"""The server-sent-events views that stream live updates of a campaign page and of the index."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from accounts.middleware import unauthorized_without_login
from accounts.models import Membership
from accounts.workspaces import choose_membership, user_memberships, workspace_campaigns
from campaigns.models import Campaign
from live import streams
from live.access import PARAMETER, read_access
from live.feeds import CampaignFeed
from live.index_feed import IndexFeed
from ops import metrics

# A page shows at most this many recipients, with room to spare.
MAX_VISIBLE_ROWS = 200

# The max number of campaigns that one index stream follows. An index page
# shows CAMPAIGNS_PER_PAGE (campaigns/views.py), so this leaves room to spare.
MAX_INDEX_CAMPAIGNS = 100

_IDS = re.compile(r"[0-9]+(,[0-9]+)*")
# Ids are PostgreSQL bigints; 18 digits always fit.
MAX_ID_DIGITS = 18


def _ids_error(ids_param: str, what: str) -> str | None:
    """Return why `ids_param` is not a list of ids, or None when it is one."""
    if not _IDS.fullmatch(ids_param):
        return f"ids must be {what} ids separated by commas, such as 12,13,14."
    too_long = next((part for part in ids_param.split(",") if len(part) > MAX_ID_DIGITS), None)
    if too_long is not None:
        return f"ids contains {too_long[:30]}, which is not a valid {what} id (too many digits)."
    return None


# The view checks the session or the signed access itself, so the
# middleware lets every request through.
@login_not_required
@require_GET
async def campaign_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Stream a campaign page's live updates as `text/event-stream`.

    Query parameters: `ids`, the comma-separated ids of the recipients that
    the page shows (rows of other recipients are not sent), and `after`, the
    stream position that the page was rendered at. A reconnecting browser's
    `Last-Event-ID` header takes the place of `after`. `access`, the signed
    value of a stream URL from the API (live/access.py), takes the place of
    a session. 401 without a session or valid access, 404 for an unknown
    campaign, 400 for malformed parameters.
    """
    access_value = request.GET.get(PARAMETER)
    if access_value is not None:
        workspace_id = await _signed_workspace(access_value, pk)
        if workspace_id is None:
            return _unauthorized(
                "The stream URL is invalid or has expired. Ask the API for a new one.\n"
            )
    else:
        workspace_id = await _session_workspace(request)
        if workspace_id is None:
            return _unauthorized("Sign in first.\n")
    if not await Campaign.objects.filter(pk=pk, workspace_id=workspace_id).aexists():
        raise Http404("Campaign not found.")
    ids_param = request.GET.get("ids", "")
    if ids_param and (error := _ids_error(ids_param, "recipient")):
        return _bad_request(error)
    recipient_ids = frozenset(int(part) for part in ids_param.split(",") if part)
    if len(recipient_ids) > MAX_VISIBLE_ROWS:
        return _bad_request(f"ids may name at most {MAX_VISIBLE_ROWS} recipients.")

    position = request.headers.get("Last-Event-ID") or request.GET.get("after")
    if position is not None and streams.parse_entry_id(position) is None:
        # An id that this server never sent, perhaps from another version:
        # start from the current state rather than refuse a reconnect.
        position = None

    return _event_stream(CampaignFeed(pk, recipient_ids, position).events(), "campaign")


@unauthorized_without_login
@require_GET
async def index_stream(request: HttpRequest) -> HttpResponseBase:
    """Stream the live summary rows of the campaigns index as `text/event-stream`.

    Query parameter `ids`: the comma-separated ids of the campaigns that the
    page shows. Ids of campaigns that no longer exist are ignored. 400 when
    `ids` is missing, malformed or names more than MAX_INDEX_CAMPAIGNS campaigns.
    Ids of another workspace's campaigns are ignored too, so the stream never
    reveals whether they exist. 204 when no id is left, which ends the
    browser's EventSource.
    """
    ids_param = request.GET.get("ids", "")
    if not ids_param:
        return _bad_request(
            "ids is missing: give the campaign ids that the page shows, such as 12,13,14."
        )
    if error := _ids_error(ids_param, "campaign"):
        return _bad_request(error)
    campaign_ids = frozenset(int(part) for part in ids_param.split(","))
    if len(campaign_ids) > MAX_INDEX_CAMPAIGNS:
        return _bad_request(f"ids may name at most {MAX_INDEX_CAMPAIGNS} campaigns.")
    own_ids = frozenset(
        [
            campaign_id
            async for campaign_id in workspace_campaigns(request)
            .filter(pk__in=campaign_ids)
            .values_list("pk", flat=True)
        ]
    )
    if not own_ids:
        # Nothing to follow. EventSource does not reconnect after a 204.
        return HttpResponse(status=204)
    return _event_stream(IndexFeed(own_ids).events(), "index")


async def _signed_workspace(value: str, campaign_id: int) -> int | None:
    """Return the workspace that a signed `access` value grants, or None.

    The grant holds only while its user is active and a member of the workspace.
    """
    access = read_access(value, campaign_id)
    if access is None:
        return None
    still_member = await Membership.objects.filter(
        user_id=access.user_id, workspace_id=access.workspace_id, user__is_active=True
    ).aexists()
    return access.workspace_id if still_member else None


async def _session_workspace(request: HttpRequest) -> int | None:
    """Return the signed-in user's current workspace, as WorkspaceMiddleware picks it.

    Returns None for an anonymous request; raises Http404 for a user of no workspace.
    """
    user = await request.auser()
    if not user.is_authenticated:
        return None

    def pick() -> int:
        membership = choose_membership(request, user_memberships(user))
        if membership is None:
            raise Http404("No workspace.")
        return membership.workspace_id

    return await sync_to_async(pick)()


def _unauthorized(message: str) -> HttpResponse:
    return HttpResponse(message, status=401, content_type="text/plain; charset=utf-8")


def _event_stream(events: AsyncIterator[str], stream: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_counted(events, stream), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies not to buffer the stream.
    response["X-Accel-Buffering"] = "no"
    return response


async def _counted(events: AsyncIterator[str], stream: str) -> AsyncGenerator[str]:
    """Yield `events`, counted in the live-streams gauge from the first event until the end."""
    gauge = metrics.LIVE_STREAMS.labels(stream=stream)
    gauge.inc()
    try:
        async for event in events:
            yield event
    finally:
        gauge.dec()


def _bad_request(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
