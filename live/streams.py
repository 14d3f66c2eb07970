"""Each campaign's live updates as a bounded Redis stream.

Workers and views add compact entries after their transaction commits: the
ids of recipients whose rows changed, a change of the campaign's status, or a
request that pages refresh. They render nothing. The stream views read the
stream, keep the entries that matter to their viewer and render those rows
from the database (see live/feeds.py), so the cost of a viewer follows what
it shows, not how fast the campaign goes.

Entry ids are the SSE event ids: a browser that reconnects names the last
entry it has, and the view sends what came after it while the stream still
contains it. The stream keeps about LIVE_STREAM_MAX_ENTRIES entries and expires
LIVE_STREAM_TTL_SECONDS after its last entry.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

import redis
from django.conf import settings

from live import rates

logger = logging.getLogger(__name__)

# Entry kinds.
ROWS = "rows"  # ids: comma-separated recipient ids; at: commit time (Unix seconds)
CLAIMS = "claims"  # as ROWS, for recipients that a worker claimed (now in flight)
CAMPAIGN = "campaign"  # the campaign's status or settings changed
HEADER = "header"  # html: the header's Turbo Stream; version; covers: an entry id
REFRESH = "refresh"  # request_id: the Turbo request that made the change, or ""
IMPORT = "import"  # id: a recipient import of the campaign whose progress or status changed

# The position before any entry: XREAD from here returns the whole stream.
START = "0-0"

_ENTRY_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
# Redis stream ids are two unsigned 64-bit integers.
_MAX_ID_PART = 2**64 - 1


def stream_key(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:campaign:{campaign_id}:updates"


def header_lease_key(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:campaign:{campaign_id}:header-lease"


def parse_entry_id(value: str) -> tuple[int, int] | None:
    """Return a stream entry id as (milliseconds, sequence), or None when malformed."""
    match = _ENTRY_ID.fullmatch(value)
    if match is None:
        return None
    milliseconds, sequence = int(match[1]), int(match[2])
    if milliseconds > _MAX_ID_PART or sequence > _MAX_ID_PART:
        return None
    return milliseconds, sequence


def entry_order(entry_id: str) -> tuple[int, int]:
    """Sort key of an entry id that Redis itself returned."""
    parsed = parse_entry_id(entry_id)
    if parsed is None:
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return parsed


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def add(pipe: Any, campaign_id: int, fields: dict[str, str]) -> None:
    """Queue an entry on `pipe`, trimming the stream and renewing its expiry."""
    key = stream_key(campaign_id)
    pipe.xadd(key, fields, maxlen=settings.LIVE_STREAM_MAX_ENTRIES, approximate=True)
    pipe.expire(key, settings.LIVE_STREAM_TTL_SECONDS)


def publish(campaign_id: int, fields: dict[str, str]) -> None:
    """Add one entry to the campaign's stream.

    Live updates are best effort: when Redis is unreachable the change is
    already in PostgreSQL and the next page load shows it, so the error is
    logged and the caller goes on.
    """
    try:
        pipe = client().pipeline(transaction=False)
        add(pipe, campaign_id, fields)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("campaign %s: live update not published: %s", campaign_id, exc)


def publish_rows(
    campaign_id: int,
    recipient_ids: Iterable[int],
    *,
    committed_at: float | None = None,
    sent: int = 0,
    failed: int = 0,
    kind: str = ROWS,
) -> None:
    """Announce that these recipients' rows changed; call it after the commit.

    `committed_at` is when the change committed (Unix seconds, default now):
    pages and the latency benchmark read it from the rendered row. `sent` and
    `failed` count the final outcomes among the rows, for the throughput
    figures and the chart. `kind` is ROWS, or CLAIMS for a claim, which
    changes no count that the campaigns index shows.
    """
    ids = ",".join(str(pk) for pk in recipient_ids)
    if not ids:
        return
    at = time.time() if committed_at is None else committed_at
    try:
        pipe = client().pipeline(transaction=False)
        add(pipe, campaign_id, {"kind": kind, "ids": ids, "at": repr(at)})
        if sent or failed:
            rates.record(pipe, campaign_id, sent, failed, at=at)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("campaign %s: live update not published: %s", campaign_id, exc)


def publish_campaign(campaign_id: int) -> None:
    """Announce a change of the campaign itself, such as its status."""
    publish(campaign_id, {"kind": CAMPAIGN})


def publish_refresh(campaign_id: int, request_id: str | None = None) -> None:
    """Ask the campaign's pages to load themselves again, after a change to many rows."""
    publish(campaign_id, {"kind": REFRESH, "request_id": request_id or ""})


def publish_import(campaign_id: int, import_id: int) -> None:
    """Announce new progress, or a new status, of one of the campaign's imports."""
    publish(campaign_id, {"kind": IMPORT, "id": str(import_id)})


def current_position(campaign_id: int) -> str | None:
    """Return the id of the stream's newest entry (START when it has none).

    A page reads this before it reads the database and hands it to its
    stream, which starts after it: any change that the page's read missed
    was published later, so the stream delivers it. None when Redis fails;
    the stream then starts with the current state instead.
    """
    try:
        newest = client().xrevrange(stream_key(campaign_id), count=1)
    except redis.RedisError as exc:
        logger.warning("campaign %s: stream position not read: %s", campaign_id, exc)
        return None
    return str(newest[0][0]) if newest else START
