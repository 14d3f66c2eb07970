"""One viewer's live feed of the campaigns index, read from its campaigns' streams.

The index shows a page of campaigns, each as a summary row: status, progress
bar and counts. The feed reads the streams (live/streams.py) of the page's
campaigns with one XREAD. A rows, campaign or refresh entry marks its
campaign as changed. Header entries are skipped, because the feed renders
its own rows.

Changed rows are rendered from the database with one `with_progress()` query
and sent as one event, at most once per LIVE_HEADER_INTERVAL_SECONDS for each viewer. A
change read during that interval goes out when the interval ends, and every
row is read after the entry that announced its change, so each campaign's
final status and counts always arrive.

On connect, and so on every reconnect, the feed reads each stream's newest
entry first and the database second, and sends the current rows: a change
that the read missed was added after that entry, so the feed reads it later.
Events carry no SSE id, because a reconnecting browser gets the current rows
anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Collection
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.template.loader import render_to_string

from campaigns.models import Campaign
from live import broadcasts, streams
from live.feeds import (
    READ_COUNT,
    RECONNECT_DELAY_MS,
    format_event,
    read_database,
    stream_client,
)

logger = logging.getLogger(__name__)

# Entry kinds that change what a summary row shows.
CHANGE_KINDS = frozenset({streams.ROWS, streams.CAMPAIGN, streams.REFRESH})


def summary_stream(campaign: Campaign) -> str:
    """Render a campaign's index row as a Turbo Stream that replaces the row on the page.

    `campaign` comes from `with_progress()`, so the row shows the counts and
    the version of that read.
    """
    html = render_to_string("campaigns/_campaign_summary.html", {"campaign": campaign})
    return broadcasts.replace_stream(f"{campaign.dom_id}_summary", html)


def render_summaries(campaign_ids: Collection[int]) -> str:
    """Render the current rows of these campaigns with one query.

    Campaigns that no longer exist are left out.
    """
    campaigns = Campaign.objects.with_progress().filter(pk__in=list(campaign_ids)).order_by("id")
    return "".join(summary_stream(campaign) for campaign in campaigns)


class IndexFeed:
    """The SSE events of one viewer of the campaigns index."""

    def __init__(self, campaign_ids: frozenset[int]) -> None:
        self.campaign_by_key = {streams.stream_key(pk): pk for pk in campaign_ids}
        # The newest entry read from each campaign's stream.
        self.positions = dict.fromkeys(self.campaign_by_key, streams.START)
        self.interval = settings.LIVE_HEADER_INTERVAL_SECONDS

        # Campaigns whose rows changed since the last event.
        self.changed: set[int] = set()
        self.last_rows_at = 0.0
        self.last_sent_at = 0.0

    async def events(self) -> AsyncIterator[str]:
        client = stream_client()
        try:
            yield f"retry: {RECONNECT_DELAY_MS}\n\n"
            first = await self._start(client)
            if first:
                yield first
            while True:
                # The cast: redis-py's stubs type the mapping with its own key and id
                # unions, and dict is invariant.
                positions = cast(Any, self.positions)
                wait_ms = self._block_ms()
                if self.changed:
                    # An event is due when the wait ends, so entries may pile up
                    # until then rather than wake the feed one by one.
                    await asyncio.sleep(wait_ms / 1000)
                    reply = await client.xread(positions, count=READ_COUNT)
                else:
                    reply = await client.xread(positions, count=READ_COUNT, block=wait_ms)
                for key, entries in cast(list[Any], reply or []):
                    self._absorb(key, entries)
                now = time.monotonic()
                if self.changed and now - self.last_rows_at >= self.interval:
                    event = await self._event()
                    if event:
                        yield event
                elif now - self.last_sent_at >= settings.LIVE_UPDATES_KEEPALIVE_SECONDS:
                    self.last_sent_at = now
                    yield ": keep-alive\n\n"
        except redis.RedisError as exc:
            # As in CampaignFeed: the browser reconnects and gets the current rows.
            logger.warning("campaigns index: live stream ended because Redis failed: %s", exc)
        finally:
            # Runs when the client disconnects: Django cancels the generator.
            await client.aclose()

    async def _start(self, client: aioredis.Redis) -> str:
        """Read each stream's newest entry, then return the event with every current row.

        A stream that does not exist yet is read from its start, so its first
        entries are not missed.
        """
        pipe = client.pipeline(transaction=False)
        for key in self.positions:
            pipe.xrevrange(key, count=1)
        newest = await pipe.execute()
        for key, entries in zip(list(self.positions), newest, strict=True):
            if entries:
                self.positions[key] = str(entries[0][0])
        self.changed = set(self.campaign_by_key.values())
        return await self._event()

    def _block_ms(self) -> int:
        """Compute how long the next read may wait for entries, in milliseconds.

        At least 1, because XREAD with BLOCK 0 waits forever.
        """
        deadline = self.last_sent_at + settings.LIVE_UPDATES_KEEPALIVE_SECONDS
        if self.changed:
            deadline = min(deadline, self.last_rows_at + self.interval)
        return max(1, math.ceil((deadline - time.monotonic()) * 1000))

    def _absorb(self, key: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        campaign_id = self.campaign_by_key[key]
        for entry_id, fields in entries:
            self.positions[key] = entry_id
            if fields.get("kind") in CHANGE_KINDS:
                self.changed.add(campaign_id)

    async def _event(self) -> str:
        """Render the changed rows as one event.

        Returns an empty string when none of those campaigns exists any more.
        """
        changed, self.changed = self.changed, set()
        self.last_rows_at = time.monotonic()
        data = await read_database(render_summaries, changed)
        if not data:
            return ""
        self.last_sent_at = time.monotonic()
        return format_event(data)
