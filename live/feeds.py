"""One viewer's live feed of a campaign page, read from the campaign's stream.

A feed follows the campaign's Redis stream (live/streams.py) from the
position its page was rendered at, or from the last event id that the
browser names when it reconnects, and turns the entries into SSE events:

- Rows: only recipients shown on the viewer's page. The feed reads them from
  the database when it sends them, so a row is always its current state, and
  each carries its version, which the page compares with the row it has.
- Header: rendered at most every LIVE_HEADER_INTERVAL_SECONDS per campaign,
  whatever the number of viewers. A feed that has seen a change newer than
  the last header takes a short Redis lease, renders the header and adds it
  to the stream. Every feed relays it. A header entry names the newest entry
  that it includes (`covers`), and feeds keep asking until a header covers
  the newest change, so the final counts always arrive.
- Refresh requests, relayed as Turbo refresh streams.
- Imports: the progress panel of each import that announced a change,
  read from the database when it is sent, like rows. The header is due too,
  because it shows whether dispatch waits for an import.

Everything due within LIVE_EVENT_INTERVAL_SECONDS goes out as one event
whose id is the newest entry read. When the stream no longer contains the
position that a reconnecting browser names, or never did, the feed sends the
current header and the page's rows instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from campaigns.models import Campaign, Recipient
from imports.rendering import progress_stream, render_progress_streams, shown_import
from live import broadcasts, streams

logger = logging.getLogger(__name__)

# How long the browser waits before reconnecting after the stream drops, in ms.
RECONNECT_DELAY_MS = 2000

# Most entries read from Redis at once; a backlog takes a few reads.
READ_COUNT = 1000

# Seconds that a blocking read may take beyond its BLOCK time before the
# connection counts as dead.
READ_TIMEOUT_MARGIN_SECONDS = 5.0
# Maximum wait of one read for new entries, in milliseconds. An idle feed
# reads again after it, which costs one round trip.
MAX_BLOCK_MS = 5000

# A viewer whose stream position moved without an event for this long is
# sent the position alone, so that a reconnect resumes close to it.
POSITION_UPDATE_SECONDS = 1.0


def format_event(data: str, event_id: str | None = None) -> str:
    """Encode one SSE message; every line of `data` gets its own `data:` prefix.

    An empty `data` gives a message that only moves the browser's last event
    id: EventSource dispatches no event without data.
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    if not data:
        return f"{head}: position\n\n"
    lines = data.splitlines() or [""]
    return head + "".join(f"data: {line}\n" for line in lines) + "\n"


def stream_client() -> aioredis.Redis:
    """Open the Redis client of one stream view.

    XREAD blocks for up to the keep-alive interval, longer than redis-py's
    default socket timeout (5 s in redis-py 8), which would end every idle
    stream with a TimeoutError.
    """
    return aioredis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_timeout=settings.LIVE_UPDATES_KEEPALIVE_SECONDS + READ_TIMEOUT_MARGIN_SECONDS,
    )


async def read_database[T](function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in the request's thread for synchronous code.

    The database connection is closed after it (with the default
    CONN_MAX_AGE of 0), so an open stream keeps no connection between its
    reads, and PostgreSQL's connection limit caps concurrent reads rather than
    open pages.
    """

    def read() -> T:
        try:
            return function(*args)
        finally:
            close_old_connections()

    return await sync_to_async(read)()


def render_header_stream(campaign_id: int) -> tuple[str, int] | None:
    """Render the header as a Turbo Stream; returns it with its version, or None when
    the campaign was deleted."""
    campaign = Campaign.objects.with_progress().filter(pk=campaign_id).first()
    if campaign is None:
        return None
    return broadcasts.header_stream(campaign), campaign.read_version or 0


def render_rows(campaign_id: int, committed_at: dict[int, float | None]) -> str:
    """Render the current state of these recipients' rows as Turbo Streams."""
    recipients = Recipient.objects.filter(campaign_id=campaign_id, pk__in=list(committed_at))
    return "".join(
        broadcasts.recipient_stream(recipient, committed_at=committed_at[recipient.pk])
        for recipient in recipients.order_by("id")
    )


def render_state(campaign_id: int, recipient_ids: frozenset[int]) -> str:
    """Render the current header, the viewer's rows and the panel of the import
    that the campaign page shows.

    A page that shows another import, or none, ignores a stream whose target
    it lacks.
    """
    header = render_header_stream(campaign_id)
    if header is None:
        return ""
    recipient_import = shown_import(campaign_id)
    panel = progress_stream(recipient_import) if recipient_import is not None else ""
    return header[0] + render_rows(campaign_id, dict.fromkeys(recipient_ids)) + panel


class CampaignFeed:
    """The SSE events of one viewer of one campaign page."""

    def __init__(
        self, campaign_id: int, recipient_ids: frozenset[int], position: str | None
    ) -> None:
        self.campaign_id = campaign_id
        self.recipient_ids = recipient_ids
        # The newest entry that the viewer has; None for "unknown".
        self.position = position
        self.key = streams.stream_key(campaign_id)
        self.header_interval = settings.LIVE_HEADER_INTERVAL_SECONDS
        self.event_interval = settings.LIVE_EVENT_INTERVAL_SECONDS

        # What the next event carries.
        self.rows: dict[int, float | None] = {}
        self.header: str | None = None
        self.header_version = -1
        self.refreshes: list[str] = []
        self.imports: set[int] = set()

        # The newest change read, and the newest entry that a header covers.
        self.changed_up_to = (0, 0)
        self.header_covers = (0, 0)
        self.next_header_attempt = 0.0

        self.last_event_at = 0.0
        self.sent_position: str | None = None

    @property
    def header_is_stale(self) -> bool:
        return self.changed_up_to > self.header_covers

    @property
    def has_output(self) -> bool:
        return bool(self.rows or self.header is not None or self.refreshes or self.imports)

    async def events(self) -> AsyncIterator[str]:
        client = stream_client()
        try:
            yield f"retry: {RECONNECT_DELAY_MS}\n\n"
            first = await self._start(client)
            if first:
                yield first
            while True:
                reply = await client.xread(
                    {self.key: self.position or streams.START},
                    count=READ_COUNT,
                    block=self._block_ms(),
                )
                for _key, entries in cast(list[Any], reply or []):
                    self._absorb(entries)
                now = time.monotonic()
                if self.header_is_stale and now >= self.next_header_attempt:
                    await self._publish_header(client)
                if self.has_output and now - self.last_event_at >= self.event_interval:
                    yield await self._event()
                elif self.position != self.sent_position and (
                    now - self.last_event_at >= POSITION_UPDATE_SECONDS
                ):
                    yield self._mark_sent("")
                elif now - self.last_event_at >= settings.LIVE_UPDATES_KEEPALIVE_SECONDS:
                    self.last_event_at = now
                    yield ": keep-alive\n\n"
        except redis.RedisError as exc:
            # Ending the response makes the browser reconnect after the retry
            # delay, and the new stream resumes or sends the current state.
            logger.warning(
                "campaign %s: live stream ended because Redis failed: %s", self.campaign_id, exc
            )
        finally:
            # Runs when the client disconnects: Django cancels the generator.
            await client.aclose()

    async def _start(self, client: aioredis.Redis) -> str:
        """Decide where the feed starts; returns the first event, if any.

        The feed resumes at the viewer's position when the stream contains
        everything after it. Otherwise it reads the stream's newest entry
        first and the database second, and sends that state: a change that
        the read missed was published after the entry, so the feed sees it.
        """
        if self.position is not None and await self._can_resume(client):
            # The viewer's header may not include the newest changes it has,
            # so one is rendered for it.
            self.changed_up_to = streams.entry_order(self.position)
            return ""
        newest = await client.xrevrange(self.key, count=1)
        self.position = str(newest[0][0]) if newest else streams.START
        self.changed_up_to = self.header_covers = streams.entry_order(self.position)
        state = await read_database(render_state, self.campaign_id, self.recipient_ids)
        return self._mark_sent(state)

    async def _can_resume(self, client: aioredis.Redis) -> bool:
        assert self.position is not None
        if self.position == streams.START:
            # Resuming from the start needs a stream that lost no entry.
            # Trimming lowers its length but not the count of entries ever
            # added to it, which Redis 7.0 and later report; before 7.0 the
            # feed sends the current state. Trimming leaves
            # max-deleted-entry-id as it was, because only XDEL sets it.
            if not await client.exists(self.key):
                # The stream may have expired or been lost with a Redis
                # restart, taking entries that the viewer never saw.
                return False
            info = await client.xinfo_stream(self.key)
            added = info.get("entries-added")
            return added is not None and int(added) == int(info["length"])
        # Trimming removes the oldest entries, so while the viewer's newest
        # entry is in the stream, so is everything after it.
        return bool(await client.xrange(self.key, self.position, self.position, count=1))

    def _block_ms(self) -> int:
        """Return how long the next read may wait for entries, in ms (1 to MAX_BLOCK_MS)."""
        now = time.monotonic()
        deadline = self.last_event_at + settings.LIVE_UPDATES_KEEPALIVE_SECONDS
        if self.has_output:
            deadline = min(deadline, self.last_event_at + self.event_interval)
        if self.header_is_stale:
            deadline = min(deadline, self.next_header_attempt)
        if self.position != self.sent_position:
            deadline = min(deadline, self.last_event_at + POSITION_UPDATE_SECONDS)
        return max(1, min(MAX_BLOCK_MS, int((deadline - now) * 1000)))

    def _absorb(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in entries:
            self.position = entry_id
            kind = fields.get("kind")
            if kind in (streams.ROWS, streams.CLAIMS):
                self.changed_up_to = streams.entry_order(entry_id)
                at = _float(fields.get("at"))
                for pk in _ids(fields.get("ids", "")):
                    if pk in self.recipient_ids:
                        previous = self.rows.get(pk)
                        self.rows[pk] = at if previous is None or at is None else max(at, previous)
            elif kind == streams.CAMPAIGN:
                self.changed_up_to = streams.entry_order(entry_id)
            elif kind == streams.HEADER:
                covers = streams.parse_entry_id(fields.get("covers", ""))
                if covers is not None:
                    self.header_covers = max(self.header_covers, covers)
                version = int(fields.get("version") or 0)
                # An equal version can still differ in its delivery rates,
                # which come from Redis, so it is sent too.
                if version >= self.header_version:
                    self.header_version = version
                    self.header = fields.get("html", "")
            elif kind == streams.IMPORT:
                self.changed_up_to = streams.entry_order(entry_id)
                import_id = fields.get("id", "")
                if import_id.isdigit():
                    self.imports.add(int(import_id))
            elif kind == streams.REFRESH:
                # Many rows changed, so the header is due as well.
                self.changed_up_to = streams.entry_order(entry_id)
                request_id = fields.get("request_id") or None
                self.refreshes.append(broadcasts.refresh_stream(request_id))

    async def _publish_header(self, client: aioredis.Redis) -> None:
        """Render the header and add it to the stream, unless another feed of this
        campaign did so within the header interval."""
        interval_ms = max(1, int(self.header_interval * 1000))
        lease = streams.header_lease_key(self.campaign_id)
        if not await client.set(lease, "1", nx=True, px=interval_ms):
            remaining = await client.pttl(lease)
            self.next_header_attempt = time.monotonic() + max(remaining, 1) / 1000
            return
        self.next_header_attempt = time.monotonic() + self.header_interval
        # Read before the database, as in _start: the header includes every
        # change up to this entry.
        newest = await client.xrevrange(self.key, count=1)
        covers = str(newest[0][0]) if newest else streams.START
        rendered = await read_database(render_header_stream, self.campaign_id)
        if rendered is None:
            # The campaign was deleted; there is nothing left to show.
            self.header_covers = self.changed_up_to
            return
        html, version = rendered
        pipe = client.pipeline(transaction=False)
        streams.add(
            pipe,
            self.campaign_id,
            {"kind": streams.HEADER, "html": html, "version": str(version), "covers": covers},
        )
        await pipe.execute()

    async def _event(self) -> str:
        parts = []
        if self.header is not None:
            parts.append(self.header)
        if self.rows:
            parts.append(await read_database(render_rows, self.campaign_id, self.rows))
        if self.imports:
            parts.append(
                await read_database(render_progress_streams, self.campaign_id, self.imports)
            )
        parts.extend(self.refreshes)
        self.header = None
        self.rows = {}
        self.imports = set()
        self.refreshes = []
        return self._mark_sent("".join(parts))

    def _mark_sent(self, data: str) -> str:
        self.last_event_at = time.monotonic()
        self.sent_position = self.position
        return format_event(data, self.position)


def _ids(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.isdigit()]


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
