"""Turbo Stream broadcasts: render the page's partials and publish them to Redis.

The campaign page and the broadcasts render the same templates, so a live
update looks exactly like a reload, with the same escaping of user content.
Each message published on a campaign's channel is one or more complete
`<turbo-stream>` elements; the stream view relays them unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.module_loading import import_string

from campaigns.models import Campaign, Recipient

logger = logging.getLogger(__name__)


def channel_name(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:campaign:{campaign_id}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def header_context(campaign: Campaign) -> dict[str, Any]:
    """Build the template context of the progress header.

    Costs one query that sums the campaign's status count changes, and one
    EXISTS query more for a completed campaign with failures.
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
    return {
        "campaign": campaign,
        "progress": progress,
        "can_retry_failed": can_retry_failed,
        "rate_limits": {
            "provider_name": getattr(provider_class, "name", provider_class.__name__),
            "provider": settings.DELIVERY_RATE_LIMIT_PER_SECOND,
        },
    }


def render_header(campaign: Campaign) -> str:
    return render_to_string("campaigns/_header.html", header_context(campaign))


def render_recipient(recipient: Recipient) -> str:
    return render_to_string("campaigns/_recipient.html", {"recipient": recipient})


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


def recipient_stream(recipient: Recipient) -> str:
    return replace_stream(recipient.dom_id, render_recipient(recipient))


def snapshot(campaign: Campaign) -> str:
    """Turbo Streams for the current header and every recipient row."""
    parts = [header_stream(campaign)]
    parts.extend(recipient_stream(r) for r in campaign.recipients.order_by("id").iterator())
    return "".join(parts)


def publish(campaign_id: int, streams: str) -> None:
    """Publish Turbo Streams on the campaign's channel.

    Live updates are best effort: if Redis is unreachable the outcome is
    already in PostgreSQL and a reload shows it, so the error is logged and
    the caller goes on.
    """
    try:
        _client(settings.REDIS_URL).publish(channel_name(campaign_id), streams)
    except redis.RedisError as exc:
        logger.warning("campaign %s: live update not published: %s", campaign_id, exc)


def has_viewers(campaign_id: int) -> bool:
    """Return whether any stream is subscribed to the campaign's channel.

    Returns True when Redis fails, so that the publish that follows logs the error.
    """
    channel = channel_name(campaign_id)
    try:
        counts = _client(settings.REDIS_URL).pubsub_numsub(channel)
    except redis.RedisError:
        return True
    return bool(counts and counts[0][1])


def broadcast_campaign(campaign: Campaign) -> None:
    """Publish the campaign's header, for example after a status change."""
    publish(campaign.pk, header_stream(campaign))


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


def broadcast_refresh(campaign: Campaign, request_id: str | None = None) -> None:
    """Ask open pages to fetch the campaign page again, after a change to many rows.

    Turbo 8 morphs the new page into the old one, so scroll position and open
    details stay as they were. `request_id` is the `X-Turbo-Request-Id` of the
    request that made the change, and the page that sent it skips the refresh.
    """
    publish(campaign.pk, header_stream(campaign) + refresh_stream(request_id))


def broadcast_recipient(recipient: Recipient) -> None:
    """Publish a recipient's row together with its campaign's refreshed header."""
    broadcast_recipients(recipient.campaign_id, [recipient])


# When each campaign's header was last published by this process, so that a
# flood of outcomes refreshes the header a few times a second, not per flush.
_header_published_at: dict[int, float] = {}


def broadcast_recipients(campaign_id: int, recipients: list[Recipient]) -> None:
    """Publish the rows of `recipients` as one message, with the campaign's header.

    The header is added at most every LIVE_HEADER_INTERVAL_SECONDS per process.
    Every status change of the campaign publishes it through
    `broadcast_campaign`, so the final counts always arrive.
    """
    if not recipients or not has_viewers(campaign_id):
        # No stream is subscribed, so rendering would be wasted. A page opened
        # later gets the current state in its stream's first snapshot.
        return
    streams = "".join(recipient_stream(r) for r in recipients)
    now = time.monotonic()
    if now - _header_published_at.get(campaign_id, 0.0) >= settings.LIVE_HEADER_INTERVAL_SECONDS:
        _header_published_at[campaign_id] = now
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is not None:
            streams += header_stream(campaign)
    publish(campaign_id, streams)
