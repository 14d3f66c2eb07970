"""Turbo Stream broadcasts: render the page's partials and publish them to Redis.

The campaign page and the broadcasts render the same templates, so a live
update looks exactly like a reload, with the same escaping of user content.
Each message published on a campaign's channel is one or more complete
`<turbo-stream>` elements; the stream view relays them unchanged.
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import escape

from campaigns.models import Campaign, Recipient

logger = logging.getLogger(__name__)


def channel_name(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:campaign:{campaign_id}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def render_header(campaign: Campaign) -> str:
    """Render the progress header; costs one grouped count query."""
    return render_to_string(
        "campaigns/_header.html", {"campaign": campaign, "progress": campaign.progress()}
    )


def render_recipient(recipient: Recipient) -> str:
    return render_to_string("campaigns/_recipient.html", {"recipient": recipient})


def replace_stream(target: str, html: str) -> str:
    """Wrap rendered HTML in a Turbo Stream that replaces the element with id `target`."""
    return (
        f'<turbo-stream action="replace" target="{escape(target)}">'
        f"<template>{html}</template></turbo-stream>"
    )


def header_stream(campaign: Campaign) -> str:
    return replace_stream(f"{campaign.dom_id}_header", render_header(campaign))


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


def broadcast_campaign(campaign: Campaign) -> None:
    """Publish the campaign's header, for example after a status change."""
    publish(campaign.pk, header_stream(campaign))


def broadcast_recipient(recipient: Recipient) -> None:
    """Publish a recipient's row together with its campaign's refreshed header."""
    campaign = Campaign.objects.get(pk=recipient.campaign_id)
    publish(campaign.pk, recipient_stream(recipient) + header_stream(campaign))
