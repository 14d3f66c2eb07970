"""Live updates of the campaign page: what workers and views announce, and how
the page's parts render as Turbo Streams.

Announcements are compact entries on the campaign's Redis stream
(live/streams.py); the stream views render what their viewer shows
(live/feeds.py). The page and the live updates render the same templates, so
a live update looks exactly like a reload, with the same escaping of user
content.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.module_loading import import_string

from campaigns.models import Campaign, Recipient
from live import rates, streams

# The default of `header_context`'s active_import: not read yet.
UNKNOWN: Any = object()


def header_context(campaign: Campaign, active_import: Any = UNKNOWN) -> dict[str, Any]:
    """Build the template context of the progress header.

    `active_import` is the campaign's queued or running import, or None; a
    caller that already read it passes it, and otherwise a pending campaign
    costs one query more.

    Costs one query that sums the campaign's status count changes (none for
    a campaign read with `with_progress()`, whose version the header then
    carries), one EXISTS query more for a completed campaign with failures,
    and one or two Redis round trips for the delivery rates.
    """
    provider_class = import_string(settings.DELIVERY_PROVIDER)
    progress = campaign.progress()
    # Retry failed queues again only failures from transient errors, so the
    # button is shown only when there is one. The view checks again, for a stale page.
    can_retry_failed = (
        campaign.status == Campaign.Status.COMPLETED
        and progress.failed > 0
        and campaign.has_retryable_failures()
    )
    # Dispatch waits for a running import, so the header says so. Only a
    # pending campaign can have one that matters, which spares the query
    # in the headers rendered during a dispatch.
    if campaign.status != Campaign.Status.PENDING:
        active_import = None
    elif active_import is UNKNOWN:
        active_import = campaign.active_import()
    # A pending campaign whose content lacks what its recipients' channels
    # need cannot be dispatched; the header says what to write first.
    missing_content = (
        campaign.missing_content() if campaign.status == Campaign.Status.PENDING else []
    )
    return {
        "campaign": campaign,
        "active_import": active_import,
        "missing_content": missing_content,
        "progress": progress,
        "activity": rates.activity(campaign, progress),
        "can_retry_failed": can_retry_failed,
        "rate_limits": {
            "provider_name": getattr(provider_class, "name", provider_class.__name__),
            "provider": settings.DELIVERY_RATE_LIMIT_PER_SECOND,
        },
    }


def render_header(campaign: Campaign) -> str:
    return render_to_string("campaigns/_header.html", header_context(campaign))


def render_recipient(recipient: Recipient, committed_at: float | None = None) -> str:
    """Render a recipient's table row.

    `committed_at` is when the update that the row shows committed (Unix
    seconds); the latency benchmark reads it from the row.
    """
    context = {"recipient": recipient, "committed_at": committed_at}
    return render_to_string("campaigns/_recipient.html", context)


def replace_stream(target: str, html: str, *, morph: bool = False) -> str:
    """Wrap rendered HTML in a Turbo Stream that replaces the element with id `target`.

    With `morph`, Turbo 8 morphs the element into the new HTML instead of
    swapping it out, so the elements that the new HTML still contains stay
    the same DOM nodes.
    """
    method = ' method="morph"' if morph else ""
    return (
        f'<turbo-stream action="replace"{method} target="{escape(target)}">'
        f"<template>{html}</template></turbo-stream>"
    )


def header_stream(campaign: Campaign) -> str:
    """Render the campaign's header as a Turbo Stream for the snapshot and every broadcast.

    The header is morphed rather than replaced because it arrives several
    times a second during a dispatch. A replacement would discard the button
    that an operator is pressing at that moment, and the click would be lost.
    """
    return replace_stream(f"{campaign.dom_id}_header", render_header(campaign), morph=True)


def recipient_stream(recipient: Recipient, committed_at: float | None = None) -> str:
    return replace_stream(recipient.dom_id, render_recipient(recipient, committed_at))


def broadcast_campaign(campaign: Campaign) -> None:
    """Announce a change of the campaign, such as its status; call it after the commit.

    Open pages get the new header within LIVE_HEADER_INTERVAL_SECONDS.
    """
    streams.publish_campaign(campaign.pk)


# Turbo 8 sends a UUID such as 1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41. Other
# clients may send other tokens, so any short run of letters, digits, "-"
# and "_" is accepted.
_TURBO_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def turbo_request_id(request: HttpRequest) -> str | None:
    """Return the `X-Turbo-Request-Id` header, or None when it is missing or invalid."""
    request_id = request.headers.get("X-Turbo-Request-Id")
    if request_id is None or not _TURBO_REQUEST_ID.fullmatch(request_id):
        return None
    return request_id


def refresh_stream(request_id: str | None = None) -> str:
    """Render a Turbo Stream that makes a page fetch its URL again and morph into it.

    Turbo 8 ignores a refresh whose `request-id` matches one of the last 20
    requests that the page itself made, so the page whose request caused the
    change keeps what that request's response showed, such as its flash
    message. Every other page refreshes.
    """
    request_id_attribute = "" if request_id is None else f' request-id="{escape(request_id)}"'
    return f'<turbo-stream action="refresh"{request_id_attribute}></turbo-stream>'


def broadcast_refresh(campaign_id: int, request_id: str | None = None) -> None:
    """Ask open pages to fetch the campaign page again, after a change to many rows.

    Turbo 8 morphs the new page into the old one, so scroll position and open
    details stay as they were. `request_id` is the `X-Turbo-Request-Id` of the
    request that made the change, and the page that sent it skips the refresh.
    """
    streams.publish_refresh(campaign_id, request_id)


def broadcast_recipients(campaign_id: int, recipients: list[Recipient]) -> None:
    """Announce that these recipients changed; call it right after the commit.

    Only their ids go out. Each open page renders those of its own rows from
    the database, and the header follows within LIVE_HEADER_INTERVAL_SECONDS.
    """
    if not recipients:
        return
    sent = sum(1 for r in recipients if r.status == Recipient.Status.SENT)
    failed = sum(1 for r in recipients if r.status == Recipient.Status.FAILED)
    streams.publish_rows(
        campaign_id, (r.pk for r in recipients), committed_at=time.time(), sent=sent, failed=failed
    )
