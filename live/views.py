"""The server-sent-events view that relays a campaign's Turbo Streams from Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, StreamingHttpResponse

from campaigns.models import Campaign
from live import broadcasts

logger = logging.getLogger(__name__)

# How long the browser waits before reconnecting after the stream drops, in ms.
RECONNECT_DELAY_MS = 2000


def format_event(data: str) -> str:
    """Encode `data` as one SSE message; every line of it gets its own `data:` prefix."""
    lines = data.splitlines() or [""]
    return "".join(f"data: {line}\n" for line in lines) + "\n"


async def campaign_stream(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Stream the campaign's live updates as `text/event-stream`; 404 for an unknown campaign."""
    if not await Campaign.objects.filter(pk=pk).aexists():
        raise Http404("Campaign not found.")
    response = StreamingHttpResponse(_events(pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies not to buffer the stream.
    response["X-Accel-Buffering"] = "no"
    return response


def _current_state(campaign_id: int) -> str:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return ""
    return broadcasts.snapshot(campaign)


async def _events(campaign_id: int) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    channel = broadcasts.channel_name(campaign_id)
    try:
        await pubsub.subscribe(channel)
        yield f"retry: {RECONNECT_DELAY_MS}\n\n"

        # Subscribed first, then read the state: whatever changed between the
        # page render and the subscription arrives in this snapshot, and any
        # later change arrives on the channel. Replaces are idempotent, so an
        # update present in both is harmless.
        yield format_event(await sync_to_async(_current_state)(campaign_id))

        keepalive = settings.LIVE_UPDATES_KEEPALIVE_SECONDS
        while True:
            # None means that the timeout passed without a message. The subscribe
            # confirmation arrives first, with type "subscribe", and is skipped.
            # With ignore_subscribe_messages=True it would come back as None too,
            # and the loop would send a keep-alive right after the snapshot.
            message = await pubsub.get_message(timeout=keepalive)
            if message is None:
                yield ": keep-alive\n\n"
            elif message["type"] == "message":
                yield format_event(message["data"].decode())
    finally:
        # Runs when the client disconnects: Django cancels the generator.
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()
        await client.aclose()
