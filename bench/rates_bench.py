"""Measure the per-second delivery counts behind the campaign header's chart.

Run it from the project root, with Redis up:

    .venv/bin/python bench/rates_bench.py

It prints three figures:

1. Redis memory that one campaign's counts take after a day of deliveries
   in every second (86,400 seconds, sent and failed both nonzero), from
   `MEMORY USAGE` of each key and from the change in `used_memory`.
2. Time per `live.rates.activity` call, which the header pays on every
   render: a processing campaign (one round trip) and a completed one (two).
3. Bytes of `campaigns/_activity.html` rendered for the last minute of that
   day.

The keys go under a channel prefix named after the script's process id, and
the script deletes them before it exits. It needs no database, and it
refuses a Redis server that is not on loopback.
"""

from __future__ import annotations

import os
import platform
import random
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

DAY_SECONDS = 86_400
# Seconds of counts recorded per pipeline. Workers send one second at a
# time; larger pipelines only make the setup faster.
SECONDS_PER_PIPELINE = 3_600
ACTIVITY_CALLS = 2_000
CAMPAIGN_ID = 1
# The day of counts ends at the start of this Unix minute, so its last
# minute is complete.
DAY_END = 1_700_086_440

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ["LIVE_UPDATES_CHANNEL_PREFIX"] = f"rates-bench-{os.getpid()}"

import django  # noqa: E402  (the environment must be set before Django loads)

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from machine import is_loopback  # noqa: E402

from campaigns.models import Campaign, Progress  # noqa: E402
from live import rates  # noqa: E402


def record_day(client: redis.Redis) -> None:
    generator = random.Random(1)
    start = DAY_END - DAY_SECONDS
    for first in range(start, DAY_END, SECONDS_PER_PIPELINE):
        pipe = client.pipeline(transaction=False)
        for second in range(first, first + SECONDS_PER_PIPELINE):
            rates.record(
                pipe,
                CAMPAIGN_ID,
                generator.randint(100, 2_000),
                generator.randint(1, 50),
                at=second + 0.5,
            )
        pipe.execute()


def time_activity(campaign: Campaign, now: float) -> tuple[float, float]:
    """Return the median and 99th percentile of `activity`, in milliseconds."""
    progress = Progress(queued=1_000_000, in_flight=500, sent=50_000_000, failed=100_000)
    durations = []
    for _ in range(ACTIVITY_CALLS):
        started = time.perf_counter()
        result = rates.activity(campaign, progress, now=now)
        durations.append((time.perf_counter() - started) * 1000)
        if not result.available:
            raise SystemExit("FAILED: reading the counts from Redis failed during the benchmark")
    return statistics.median(durations), statistics.quantiles(durations, n=100)[98]


def main() -> int:
    host = urlsplit(settings.REDIS_URL).hostname
    if not is_loopback(host):
        print(f"FAILED: REDIS_URL points at {host!r}, which is not a loopback address")
        return 2
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30)
    try:
        version = client.info("server")["redis_version"]
    except redis.RedisError as exc:
        print(f"FAILED: cannot connect to Redis ({exc}); start it with `bin/services ensure`")
        return 2
    prefix = settings.LIVE_UPDATES_CHANNEL_PREFIX
    print("Live rates benchmark")
    python = platform.python_version()
    print(f"  machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {python}")
    print(f"  Redis {version}, LIVE_RATE_HISTORY_SECONDS={settings.LIVE_RATE_HISTORY_SECONDS}")
    try:
        used_before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        record_day(client)
        recorded_in = time.perf_counter() - started
        used_after = client.info("memory")["used_memory"]
        keys = list(client.scan_iter(f"{prefix}:*", count=1_000))
        key_bytes = sum(client.memory_usage(key) or 0 for key in keys)
        minute_keys = len(keys) - 1
        print(f"1. a day of counts: {len(keys):,} keys ({minute_keys:,} minute hashes)")
        print(
            f"   MEMORY USAGE sum: {key_bytes / 1_048_576:.2f} MiB, "
            f"{key_bytes / minute_keys:,.0f} bytes per minute hash"
        )
        print(f"   used_memory change: {(used_after - used_before) / 1_048_576:.2f} MiB")
        print(f"   recorded in {recorded_in:.1f} s ({DAY_SECONDS / recorded_in:,.0f} seconds/s)")

        processing = Campaign(pk=CAMPAIGN_ID, name="bench", status=Campaign.Status.PROCESSING)
        completed = Campaign(pk=CAMPAIGN_ID, name="bench", status=Campaign.Status.COMPLETED)
        print(f"2. activity() over {ACTIVITY_CALLS:,} calls, median and 99th percentile:")
        for label, campaign in (("processing", processing), ("completed", completed)):
            median, p99 = time_activity(campaign, now=DAY_END + 0.5)
            print(f"   {label}: {median:.3f} ms, {p99:.3f} ms")

        busiest = rates.activity(processing, Progress(queued=1_000_000), now=DAY_END + 0.5)
        html = render_to_string(
            "campaigns/_activity.html", {"activity": busiest, "campaign": processing}
        )
        print(f"3. _activity.html for the day's last minute: {len(html.encode()):,} bytes")
    finally:
        keys = list(client.scan_iter(f"{prefix}:*", count=1_000))
        if keys:
            client.delete(*keys)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
