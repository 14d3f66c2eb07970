"""Per-second delivery counts in Redis, for the header's throughput, time to finish and chart.

Workers add each flush's final outcomes to a hash per campaign and minute,
`<prefix>:campaign:<id>:rate:<minute>`, with one field per second and
outcome ("17s" and "17f" count the sent and failed outcomes of second 17).
A sorted set, `<prefix>:campaign:<id>:rate:last`, stores the latest second
with outcomes, so a campaign that stopped processing can still show the
minute that ended there. Every write sets the key's TTL to
LIVE_RATE_HISTORY_SECONDS, so a campaign keeps at most one hash per minute
of that history: a day of deliveries takes at most 1,440 hashes of up to
120 small fields.

Times are Unix seconds from `time.time()` of the calling process, not the
Redis server's clock: the worker's clock when it records, and the web
process's clock when it reads. They agree as far as the hosts' clocks
agree. A web host whose clock runs behind the workers' shows the latest
seconds that much later.

Like the rest of the live updates, the counts are best effort: when Redis
fails, `activity` returns an Activity whose `available` is False, and the
outcomes stay in PostgreSQL.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from campaigns.models import Campaign, Progress

logger = logging.getLogger(__name__)

# The chart shows this many seconds, one column each.
CHART_SECONDS = 60
# Chart geometry in SVG user units; integer coordinates keep the path data short.
CHART_COLUMN_WIDTH = 4
CHART_HEIGHT = 40

# Seconds a read may take before the header renders without live rates.
REDIS_TIMEOUT_SECONDS = 1.0

_LAST_MEMBER = "last"


def _key_prefix(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:campaign:{campaign_id}:rate"


def minute_key(campaign_id: int, minute: int) -> str:
    """Name the hash that contains the campaign's counts of `minute` (Unix seconds // 60)."""
    return f"{_key_prefix(campaign_id)}:{minute}"


def last_second_key(campaign_id: int) -> str:
    """Name the sorted set whose only member, "last", scores the campaign's latest second."""
    return f"{_key_prefix(campaign_id)}:last"


def record(
    pipe: redis.client.Pipeline, campaign_id: int, sent: int, failed: int, at: float | None = None
) -> None:
    """Queue on `pipe` the commands that add `sent` and `failed` outcomes to second `at`.

    `at` is Unix time and defaults to `time.time()`. The caller executes the
    pipeline after the outcomes are committed, so that the chart never counts
    an outcome that was rolled back. Nothing is queued when both counts are 0.
    """
    if sent <= 0 and failed <= 0:
        return
    second = math.floor(time.time() if at is None else at)
    key = minute_key(campaign_id, second // 60)
    if sent > 0:
        pipe.hincrby(key, f"{second % 60}s", sent)
    if failed > 0:
        pipe.hincrby(key, f"{second % 60}f", failed)
    pipe.expire(key, settings.LIVE_RATE_HISTORY_SECONDS)
    # GT keeps the highest second when two workers' pipelines arrive out of order.
    last_key = last_second_key(campaign_id)
    pipe.zadd(last_key, {_LAST_MEMBER: second}, gt=True)
    pipe.expire(last_key, settings.LIVE_RATE_HISTORY_SECONDS)


@dataclass(frozen=True)
class Chart:
    """SVG geometry of the deliveries chart, in user units of a `width` by `height` viewBox.

    Both paths are step areas that stand on the baseline, one column per
    second, and are empty when the window has no deliveries. `sent_path` is
    drawn over `total_path`, so the visible part of the total area is the
    failed outcomes, stacked on the sent ones.
    """

    width: int
    height: int
    total_path: str
    sent_path: str


@dataclass(frozen=True)
class Activity:
    """Recent deliveries of one campaign, as the header shows them.

    `sent` and `failed` count outcomes per second, oldest first, over the
    CHART_SECONDS that end now while the campaign is processing (the current,
    incomplete second left out) and at its latest recorded second otherwise.
    `throughput` (messages per second) and `seconds_to_finish` are None when
    they do not apply: the campaign is not processing, or nothing was
    delivered in the throughput window. When Redis failed, `available` is
    False and everything else is empty.
    """

    available: bool
    sent: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    ends_now: bool = True
    throughput: float | None = None
    seconds_to_finish: float | None = None

    @property
    def sent_total(self) -> int:
        return sum(self.sent)

    @property
    def failed_total(self) -> int:
        return sum(self.failed)

    @property
    def peak(self) -> int:
        """Largest number of outcomes in one second of the window."""
        return max((s + f for s, f in zip(self.sent, self.failed, strict=True)), default=0)

    @property
    def chart(self) -> Chart:
        peak = self.peak
        totals = [s + f for s, f in zip(self.sent, self.failed, strict=True)]
        return Chart(
            width=CHART_SECONDS * CHART_COLUMN_WIDTH,
            height=CHART_HEIGHT,
            total_path=_step_area(_column_heights(totals, peak)),
            sent_path=_step_area(_column_heights(self.sent, peak)),
        )


UNAVAILABLE = Activity(available=False)


def activity(campaign: Campaign, progress: Progress, *, now: float | None = None) -> Activity:
    """Read the campaign's recent per-second counts and derive throughput and time to finish.

    Costs one Redis round trip for a processing campaign and up to two for
    any other: the first finds the latest second with outcomes. `now` is
    Unix time and defaults to `time.time()`. The time to finish counts every
    queued recipient as ready to send, including those that wait for a retry.
    """
    now = time.time() if now is None else now
    processing = campaign.status == Campaign.Status.PROCESSING
    client = _client(settings.REDIS_URL)
    try:
        # The window ends before the current second, which is still incomplete,
        # or after the last second with outcomes of a campaign that stopped.
        end = math.floor(now) if processing else _end_of_activity(client, campaign.pk)
        if end is None:
            sent, failed = [0] * CHART_SECONDS, [0] * CHART_SECONDS
        else:
            sent, failed = _read_counts(client, campaign.pk, end - CHART_SECONDS, end)
    except redis.RedisError as exc:
        _report_outage(campaign.pk, exc)
        return UNAVAILABLE
    _report_recovery()

    throughput = None
    seconds_to_finish = None
    if processing:
        window = settings.LIVE_THROUGHPUT_WINDOW_SECONDS
        delivered = sum(sent[-window:]) + sum(failed[-window:])
        if delivered:
            throughput = delivered / window
            seconds_to_finish = (progress.queued + progress.in_flight) / throughput
    return Activity(
        available=True,
        sent=tuple(sent),
        failed=tuple(failed),
        ends_now=processing,
        throughput=throughput,
        seconds_to_finish=seconds_to_finish,
    )


def _end_of_activity(client: redis.Redis, campaign_id: int) -> int | None:
    """Return the second after the campaign's latest one with outcomes, or None without any."""
    last = client.zscore(last_second_key(campaign_id), _LAST_MEMBER)
    return None if last is None else int(last) + 1


def _read_counts(
    client: redis.Redis, campaign_id: int, start: int, end: int
) -> tuple[list[int], list[int]]:
    """Return the sent and failed counts of each second from `start` up to, not including, `end`.

    One round trip: the window spans at most two minutes' hashes.
    """
    minutes = range(start // 60, (end - 1) // 60 + 1)
    pipe = client.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(minute_key(campaign_id, minute))
    sent = [0] * (end - start)
    failed = [0] * (end - start)
    for minute, fields in zip(minutes, pipe.execute(), strict=True):
        for field, value in fields.items():
            name = field.decode()
            second = minute * 60 + int(name[:-1])
            if not start <= second < end:
                continue
            counts = sent if name[-1] == "s" else failed
            counts[second - start] = int(value)
    return sent, failed


def _column_heights(values: Sequence[int], peak: int) -> list[int]:
    """Scale `values` so that `peak` fills the chart; rounded up, so no delivery is drawn as 0."""
    if peak <= 0:
        return [0] * len(values)
    return [-(-value * CHART_HEIGHT // peak) for value in values]


def _step_area(heights: Sequence[int]) -> str:
    """Return SVG path data for columns of `heights` on the baseline, or "" when all are 0.

    Relative commands and merged runs keep a busy minute to a few hundred
    characters.
    """
    first = next((i for i, height in enumerate(heights) if height), None)
    if first is None:
        return ""
    commands = [f"M{first * CHART_COLUMN_WIDTH} {CHART_HEIGHT}"]
    level = 0
    run = 0
    for height in heights[first:]:
        if height != level:
            if run:
                commands.append(f"h{run}")
                run = 0
            commands.append(f"v{level - height}")
            level = height
        run += CHART_COLUMN_WIDTH
    if level:
        commands.append(f"h{run}V{CHART_HEIGHT}")
    commands.append("z")
    return "".join(commands)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


# Whether the current Redis outage was logged, so that a header rendered
# several times a second logs it once, not on every render. Threads may race
# on it and log an outage twice, which is harmless.
_outage_reported = False


def _report_outage(campaign_id: int, exc: redis.RedisError) -> None:
    global _outage_reported
    if not _outage_reported:
        _outage_reported = True
        logger.warning(
            "campaign %s: reading live delivery rates failed: %s. "
            "Headers show no rates until Redis answers again",
            campaign_id,
            exc,
        )


def _report_recovery() -> None:
    global _outage_reported
    if _outage_reported:
        _outage_reported = False
        logger.info("live delivery rates available again")
