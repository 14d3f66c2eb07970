"""Benchmark the dispatch engine against the database's raw write rate.

Run it from the project root, with PostgreSQL and Redis up and migrated:

    .venv/bin/python bench/dispatch_bench.py [--quick] [--only 1,3]

It prints five figures, each with its parameters, then a summary table
(sizes are for a full run, and --quick divides every size by 10):

1. Raw limit: rows per second marked `sent` in a scratch copy of the
   recipients table, 1,000 ids per UPDATE and transaction (100,000 rows).
2. Baseline: recipients per second of the removed sequential dispatcher,
   rebuilt here, with a zero-latency provider (10,000 recipients).
3. Engine: recipients per second from Dispatch to `completed` with a
   zero-latency provider and 2 Celery worker processes (100,000 recipients).
4. Engine with 1-3 s of simulated latency per message and no rate limit:
   seconds to `completed` for 10,000 recipients.
5. Peak RSS of each worker process while the engine dispatches 100,000 and
   then 1,000,000 recipients.

The script creates its campaigns in the database that DATABASE_URL names and
deletes them before it exits. It starts its own Celery workers on queues and
a pub/sub channel prefix of its own, so workers of `bin/dev` on the same
Redis server neither take its jobs nor receive its live updates. It refuses
PostgreSQL and Redis servers that are not on loopback.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

RUN_ID = str(os.getpid())
# Queue, channel prefix and campaign names of this run; the process id keeps
# two runs on one Redis server or database apart.
BENCH_QUEUE = f"dispatch-bench-{RUN_ID}"
BENCH_CONTROL_QUEUE = f"dispatch-bench-control-{RUN_ID}"
BENCH_CHANNEL_PREFIX = f"dispatch-bench-{RUN_ID}"
CAMPAIGN_NAME_PREFIX = "dispatch_bench:"
SCRATCH_TABLE = "bench_recipients"

WORKER_PROCESSES = 2
PROGRESS_INTERVAL_SECONDS = 5.0
POLL_INTERVAL_SECONDS = 0.1
RSS_SAMPLE_INTERVAL_SECONDS = 0.2
WORKER_READY_TIMEOUT_SECONDS = 60.0
WORKER_STOP_TIMEOUT_SECONDS = 20.0
# Engine waits give up after ENGINE_TIMEOUT_BASE_SECONDS plus the time the
# campaign would take at ENGINE_TIMEOUT_MIN_RATE recipients per second.
ENGINE_TIMEOUT_BASE_SECONDS = 120.0
ENGINE_TIMEOUT_MIN_RATE = 250.0
LATENCY_TIMEOUT_SECONDS = 300.0
# The sequential baseline counts every recipient of the campaign once per
# recipient, so it slows down as the campaign grows.
BASELINE_TIMEOUT_BASE_SECONDS = 120.0
BASELINE_TIMEOUT_MIN_RATE = 10.0

RAW_LIST_SIZE = 1_000
# The raw rate varies by a quarter from run to run (checkpoints, WAL), so it
# is measured this many times and the median is kept.
RAW_REPEATS = 3
BASELINE_PAGE_SIZE = 100  # the removed dispatcher read queued recipients 100 at a time

# Targets.
ENGINE_TARGET_RATE = 3_000.0
ENGINE_TARGET_SHARE_OF_RAW = 0.10
LATENCY_TARGET_SECONDS = 60.0
RSS_TARGET_MIB = 150.0
# "Flat" memory: the peak during the larger campaign is at most this much
# above the peak during the smaller one.
RSS_FLAT_TOLERANCE = 0.10

# Simulated latency of figure 4, and the per-loop concurrency it needs.
LATENCY_MIN_SECONDS = 1.0
LATENCY_MAX_SECONDS = 3.0
LATENCY_CONCURRENCY = 256

FULL_SIZES = {
    "raw": 100_000,
    "baseline": 10_000,
    "engine": 100_000,
    "latency": 10_000,
    "warmup": 1_000,
}
FULL_MEMORY_SIZES = (100_000, 1_000_000)

# Settings that every process of the run gets, so that no failure rule, rate
# limit or automatic pause of the developer's .env changes what is measured.
COMMON_OVERRIDES = {
    "CELERY_TASK_DEFAULT_QUEUE": BENCH_QUEUE,
    "DISPATCH_CONTROL_QUEUE": BENCH_CONTROL_QUEUE,
    "LIVE_UPDATES_CHANNEL_PREFIX": BENCH_CHANNEL_PREFIX,
    "DELIVERY_PROVIDER": "dispatch.providers.SimulatedProvider",
    "DELIVERY_DELAY_MIN_SECONDS": "0",
    "DELIVERY_DELAY_MAX_SECONDS": "0",
    "DELIVERY_FAILURE_RATE": "0",
    "DELIVERY_RATE_LIMIT_PER_SECOND": "0",
    "AUTO_PAUSE_FAILURE_COUNT": "0",
    "AUTO_PAUSE_FAILURE_RATE": "0",
}


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production behaviour unless DEBUG is set in the environment: with DEBUG
    # on, Django keeps the SQL of recent queries, which costs CPU and memory.
    # A key of this run's own satisfies the check that DEBUG off makes.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    # The benchmark's requests are plain http on loopback, which DEBUG off
    # would otherwise redirect to https.
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "false")
    os.environ.update(COMMON_OVERRIDES)


configure_environment()

import django  # noqa: E402  (the environment must be set before Django loads)

django.setup()

import celery  # noqa: E402
import redis  # noqa: E402
from bench_workspace import bench_workspace  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import OperationalError, connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from machine import cpu_model, is_loopback, load_average, memory_total_gib  # noqa: E402

from campaigns.models import Campaign, DeliveryAttempt, Recipient  # noqa: E402
from dispatch.locks import advisory_lock  # noqa: E402
from dispatch.providers import Delivery, SimulatedProvider  # noqa: E402
from dispatch.tasks import dispatch_campaign_later  # noqa: E402
from live import broadcasts, streams  # noqa: E402

RECIPIENTS = Recipient._meta.db_table
CAMPAIGNS = Campaign._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table


# A personalised message in both bodies, so that the figures include rendering
# each recipient's email and signing its unsubscribe link.
BENCH_CONTENT = {
    "email_subject": "News for {{ first_name|default:'you' }}",
    "email_text": "Dear {{ name|default:'reader' }},\n\nThis month's news is below.",
    "email_html": "<html><body><p>Dear {{ name|default:'reader' }},</p>"
    "<p>This month's news is below.</p></body></html>",
    "sms_text": "Hi {{ first_name }}, this month's news: {{ unsubscribe_url }}",
}


class BenchError(Exception):
    """A figure could not be measured; the message states why and what to check."""


def say(message: str = "") -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------
# Results


@dataclass
class Figure:
    number: int
    title: str
    parameters: str
    result: str
    target: str = ""
    verdict: str = ""


@dataclass
class Run:
    """Sizes, results and the raw rate that the figures of one run share."""

    quick: bool
    only: set[int]
    figures: list[Figure] = field(default_factory=list)
    raw_rate: float | None = None
    failures: list[str] = field(default_factory=list)

    def size(self, name: str) -> int:
        value = FULL_SIZES[name]
        return value // 10 if self.quick else value

    def memory_sizes(self) -> tuple[int, int]:
        small, large = FULL_MEMORY_SIZES
        return (small // 10, large // 10) if self.quick else (small, large)


QUICK_VERDICT = "not judged at --quick size"


def verdict(run: Run, met: bool) -> str:
    """Return the summary's verdict. The targets are for full sizes, so a
    --quick run is not judged against them."""
    if run.quick:
        return QUICK_VERDICT
    return "met" if met else "MISSED"


def print_summary(run: Run) -> None:
    header = ("figure", "measurement", "parameters", "result", "target", "verdict")
    rows = [
        (str(f.number), f.title, f.parameters, f.result, f.target, f.verdict)
        for f in sorted(run.figures, key=lambda f: f.number)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    say()
    say("Summary" + (" (--quick: sizes are a tenth of a full run)" if run.quick else ""))
    say(line)
    say("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    say(line)
    for row in rows:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    say(line)
    for failure in run.failures:
        say(f"FAILED: {failure}")


# ---------------------------------------------------------------------------
# Environment report and checks


def require_loopback_servers() -> None:
    database_host = settings.DATABASES["default"].get("HOST")
    if not is_loopback(database_host):
        raise BenchError(
            f"DATABASE_URL points at {database_host!r}, which is not a loopback address; "
            "the benchmark loads its database heavily, so run it against a local server "
            "(for example DATABASE_URL=postgres://postgres@127.0.0.1:5432/cd_bench)"
        )
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        host = urlsplit(getattr(settings, name)).hostname
        if not is_loopback(host):
            raise BenchError(
                f"{name} points at {host!r}, which is not a loopback address; "
                "run the benchmark against a local Redis server"
            )


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def database_facts() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        facts = {"version": cursor.fetchone()[0]}
        for name in (
            "synchronous_commit",
            "fsync",
            "shared_buffers",
            "max_connections",
            "autovacuum",
        ):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    return facts


def redis_version() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def check_schema() -> None:
    name = settings.DATABASES["default"]["NAME"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s), to_regclass(%s)", [RECIPIENTS, ATTEMPTS])
            found = cursor.fetchone()
    except OperationalError as exc:
        raise BenchError(
            f"cannot connect to database {name!r} ({exc}); create it with "
            f"`createdb -h 127.0.0.1 -U postgres {name}` or point DATABASE_URL at another, "
            "then migrate it"
        ) from exc
    if found is None or None in found:
        raise BenchError(
            f"the tables {RECIPIENTS} and {ATTEMPTS} are missing from database "
            f"{settings.DATABASES['default']['NAME']!r}; run "
            "`DEBUG=true .venv/bin/python manage.py migrate` with the same DATABASE_URL"
        )


def check_redis() -> None:
    url = redact_url(settings.REDIS_URL)
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(
            f"cannot connect to Redis at {url} ({exc}); start it with `bin/services ensure` "
            "or point REDIS_URL at another loopback server"
        ) from exc
    finally:
        client.close()


def print_environment(run: Run, title: str = "Dispatch benchmark") -> None:
    say(title + (" (--quick: every size divided by 10)" if run.quick else ""))
    say(f"  figures: {', '.join(str(n) for n in sorted(run.only))}")
    say(
        f"  machine: {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{memory_total_gib():.1f} GiB memory, load average {load_average()} at start"
    )
    say(
        f"  software: Python {platform.python_version()}, Django {django.get_version()}, "
        f"Celery {celery.__version__}"
    )
    print_servers()
    print_settings()
    say()


def print_servers() -> None:
    database = settings.DATABASES["default"]
    facts = database_facts()
    say(f"  PostgreSQL: {facts['version']}")
    say(
        f"    database {database['NAME']!r} at {database.get('HOST') or 'local socket'}:"
        f"{database.get('PORT') or 5432}; synchronous_commit={facts['synchronous_commit']}, "
        f"fsync={facts['fsync']}, shared_buffers={facts['shared_buffers']}, "
        f"max_connections={facts['max_connections']}, autovacuum={facts['autovacuum']}"
    )
    if facts["autovacuum"] != "on":
        say(
            "    NOTE: autovacuum is off on this server, so dead rows pile up during a "
            "campaign. The benchmark runs VACUUM (ANALYZE) before each measured campaign."
        )
    say(f"  Redis: {redis_version()} at {redact_url(settings.REDIS_URL)}")


def print_settings() -> None:
    say(
        f"  settings: DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']} "
        f"DEBUG={settings.DEBUG} CONN_MAX_AGE={settings.DATABASES['default'].get('CONN_MAX_AGE')}"
    )
    say(
        f"    engine: DELIVERY_CONCURRENCY={settings.DELIVERY_CONCURRENCY} "
        f"DISPATCH_BATCH_SIZE={settings.DISPATCH_BATCH_SIZE} "
        f"DISPATCH_WORKERS_PER_CAMPAIGN={settings.DISPATCH_WORKERS_PER_CAMPAIGN} "
        f"DISPATCH_FLUSH_INTERVAL_SECONDS={settings.DISPATCH_FLUSH_INTERVAL_SECONDS} "
        f"DISPATCH_FLUSH_SIZE={settings.DISPATCH_FLUSH_SIZE} "
        f"DELIVERY_LEASE_SECONDS={settings.DELIVERY_LEASE_SECONDS} "
        f"LIVE_HEADER_INTERVAL_SECONDS={settings.LIVE_HEADER_INTERVAL_SECONDS}"
    )
    say(
        "    set by the benchmark for itself and its workers: "
        + " ".join(f"{key}={value}" for key, value in COMMON_OVERRIDES.items())
    )
    if settings.DEBUG:
        say(
            "    NOTE: with DEBUG on, Django keeps the text of the last 9,000 queries of "
            "each database connection in memory, which costs time and worker memory. "
            "Unset DEBUG to measure without it."
        )


# ---------------------------------------------------------------------------
# Campaigns and recipients


class CampaignRegistry:
    """Bench campaigns created by this run, so that every exit path deletes them.

    Campaign names start with `name_prefix`, so that each benchmark finds
    only its own leftovers.
    """

    def __init__(self, name_prefix: str = CAMPAIGN_NAME_PREFIX) -> None:
        self.name_prefix = name_prefix
        self.ids: list[int] = []

    def create(self, label: str) -> Campaign:
        campaign = Campaign.objects.create(
            workspace=bench_workspace(),
            name=f"{self.name_prefix} {label} (run {RUN_ID})",
            **BENCH_CONTENT,
        )
        self.ids.append(campaign.pk)
        return campaign

    def delete(self, campaign_ids: list[int]) -> None:
        """Delete campaigns with their recipients and attempts in SQL.

        The ORM's cascade would load every recipient into memory first, which
        for a million rows takes minutes.
        """
        if not campaign_ids:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {ATTEMPTS} WHERE campaign_id = ANY(%s)", [campaign_ids])
            cursor.execute(f"DELETE FROM {RECIPIENTS} WHERE campaign_id = ANY(%s)", [campaign_ids])
            cursor.execute(f"DELETE FROM {CAMPAIGNS} WHERE id = ANY(%s)", [campaign_ids])
        self.ids = [pk for pk in self.ids if pk not in campaign_ids]

    def cancel_processing(self) -> None:
        """Cancel this run's campaigns that are still processing, so worker loops stop."""
        for campaign in Campaign.objects.filter(pk__in=self.ids, status=Campaign.Status.PROCESSING):
            campaign.cancel()

    def delete_all(self) -> None:
        if self.ids:
            say(f"Deleting bench campaigns {self.ids} ...")
            self.delete(list(self.ids))


def seed_recipients(campaign_id: int, count: int, table: str = RECIPIENTS) -> float:
    """Insert `count` queued recipients with COPY; returns seconds.

    Every column without a database default is written, because Django keeps
    model defaults in Python rather than in the schema.
    """
    started = time.perf_counter()
    columns = (
        "campaign_id, name, email, phone_number, status, failure_reason, attempts, "
        "attempt_base, last_error_transient, provider_message_id, version"
    )
    statement = f"COPY {table} ({columns}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(statement) as copy:
        for i in range(count):
            copy.write_row(
                (campaign_id, f"Recipient {i}", f"r{i}@bench.example.com", "", "queued", "",
                 0, 0, False, "", 0)
            )  # fmt: skip
    return time.perf_counter() - started


def vacuum_analyze(*tables: str) -> None:
    """VACUUM and ANALYZE, so that a figure starts from a maintained table.

    Without it, dead rows of earlier campaigns slow every scan when
    autovacuum is off or has not caught up, and results depend on history.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


def create_seeded_campaign(registry: CampaignRegistry, label: str, count: int) -> Campaign:
    campaign = registry.create(label)
    seconds = seed_recipients(campaign.pk, count)
    started = time.perf_counter()
    vacuum_analyze(RECIPIENTS, ATTEMPTS)
    say(
        f"  created campaign {campaign.pk} with {count:,} recipients (COPY in {seconds:.1f} s, "
        f"VACUUM (ANALYZE) in {time.perf_counter() - started:.1f} s)"
    )
    return campaign


class ProgressPrinter:
    """Prints done/total and the recent rate at most every PROGRESS_INTERVAL_SECONDS."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.started = time.perf_counter()
        self.last_time = self.started
        self.last_done = 0

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if now - self.last_time < PROGRESS_INTERVAL_SECONDS:
            return
        rate = (done - self.last_done) / (now - self.last_time)
        self.last_time, self.last_done = now, done
        say(
            f"    [{self.label}] {done:,}/{self.total:,} done, {rate:,.0f}/s over the last "
            f"{PROGRESS_INTERVAL_SECONDS:.0f} s, {now - self.started:.0f} s elapsed{extra}"
        )


# ---------------------------------------------------------------------------
# Figure 1: the raw limit


def measure_raw_rate(registry: CampaignRegistry, total: int, label: str) -> float:
    """Mark `total` rows of a fresh scratch table sent; returns rows per second."""
    campaign = registry.create("figure 1 raw limit")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            cursor.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE {RECIPIENTS} INCLUDING ALL)")
            # LIKE copies columns, defaults, CHECK constraints and indexes but
            # not foreign keys, so the recipients table's key to campaigns is
            # added by hand, deferred as Django creates it.
            cursor.execute(
                f"ALTER TABLE {SCRATCH_TABLE} ADD FOREIGN KEY (campaign_id) "
                f"REFERENCES {CAMPAIGNS} (id) DEFERRABLE INITIALLY DEFERRED"
            )
        seed_recipients(campaign.pk, total, table=SCRATCH_TABLE)
        vacuum_analyze(SCRATCH_TABLE)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {SCRATCH_TABLE} ORDER BY id")
            ids = [row[0] for row in cursor.fetchall()]

        progress = ProgressPrinter(label, total)
        marked = 0
        started = time.perf_counter()
        for offset in range(0, len(ids), RAW_LIST_SIZE):
            chunk = ids[offset : offset + RAW_LIST_SIZE]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {SCRATCH_TABLE} SET status = 'sent', processed_at = clock_timestamp() "
                    "WHERE id = ANY(%s) AND status = 'queued'",
                    [chunk],
                )
                marked += cursor.rowcount
            progress.update(marked)
        seconds = time.perf_counter() - started
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        registry.delete([campaign.pk])

    if marked != total:
        raise BenchError(f"raw limit: {marked:,} of {total:,} rows were marked sent")
    rate = total / seconds
    say(f"  {label}: {rate:,.0f} rows/s ({total:,} rows in {seconds:.2f} s)")
    return rate


def figure_raw_limit(run: Run, registry: CampaignRegistry) -> None:
    total = run.size("raw")
    say(
        f"Figure 1: raw limit: {total:,} rows marked sent, {RAW_LIST_SIZE:,} ids per "
        f"transaction, median of {RAW_REPEATS} runs"
    )
    say(
        f"  {SCRATCH_TABLE}: LIKE {RECIPIENTS} INCLUDING ALL plus its foreign key to "
        f"{CAMPAIGNS}, loaded with COPY and vacuumed before each run"
    )
    rates = [
        measure_raw_rate(registry, total, f"run {number}") for number in range(1, RAW_REPEATS + 1)
    ]
    run.raw_rate = statistics.median(rates)
    say(
        f"  => {run.raw_rate:,.0f} rows/s (median of runs from {min(rates):,.0f} "
        f"to {max(rates):,.0f})"
    )
    say()
    run.figures.append(
        Figure(
            1,
            "raw limit (UPDATE ... WHERE id = ANY)",
            f"{total:,} rows, {RAW_LIST_SIZE:,} ids/transaction, median of {RAW_REPEATS}",
            f"{run.raw_rate:,.0f} rows/s",
        )
    )


# ---------------------------------------------------------------------------
# Figure 2: the sequential baseline


def queued_recipients(campaign: Campaign) -> Iterator[Recipient]:
    """Yield the campaign's queued recipients in id order, a page at a time."""
    last_id = 0
    while True:
        page = list(
            Recipient.objects.filter(
                campaign=campaign, status=Recipient.Status.QUEUED, id__gt=last_id
            ).order_by("id")[:BASELINE_PAGE_SIZE]
        )
        if not page:
            return
        yield from page
        last_id = page[-1].pk


def deliver_sequentially(campaign: Campaign, provider: SimulatedProvider, total: int) -> int:
    """Run the removed dispatcher's loop: one recipient, one transaction, one broadcast.

    For each queued recipient in id order: deliver, then one conditional
    UPDATE in autocommit (its own transaction), then re-read the campaign and
    publish the row and the header, whose rendering counts recipients by
    status. Returns how many recipients were marked sent. Raises BenchError
    when the loop runs longer than BASELINE_TIMEOUT_BASE_SECONDS plus the time
    it would take at BASELINE_TIMEOUT_MIN_RATE recipients per second.
    """
    progress = ProgressPrinter("baseline", total)
    timeout = BASELINE_TIMEOUT_BASE_SECONDS + total / BASELINE_TIMEOUT_MIN_RATE
    deadline = time.perf_counter() + timeout
    sent = 0
    with advisory_lock(campaign.pk) as acquired:
        if not acquired:
            raise BenchError(f"baseline: the advisory lock of campaign {campaign.pk} is taken")
        broadcasts.broadcast_campaign(campaign)
        for recipient in queued_recipients(campaign):
            provider.deliver(
                Delivery(
                    campaign_id=recipient.campaign_id,
                    recipient_id=recipient.pk,
                    attempt=1,
                    name=recipient.name,
                    email=recipient.email,
                    phone_number=recipient.phone_number,
                    idempotency_key=recipient.idempotency_key,
                )
            )
            now = timezone.now()
            changed = Recipient.objects.filter(
                pk=recipient.pk, status=Recipient.Status.QUEUED
            ).update(status=Recipient.Status.SENT, failure_reason="", processed_at=now)
            if changed:
                recipient.status = Recipient.Status.SENT
                recipient.failure_reason, recipient.processed_at = "", now
                current = Campaign.objects.get(pk=recipient.campaign_id)
                # As the core did: the row and the header, rendered and
                # published on a pub/sub channel after every recipient.
                streams.client().publish(
                    f"{streams.stream_key(current.pk)}:baseline",
                    broadcasts.recipient_stream(recipient) + broadcasts.header_stream(current),
                )
                sent += 1
            progress.update(sent)
            if time.perf_counter() > deadline:
                raise BenchError(
                    f"baseline: timed out after {timeout:.0f} s with {sent:,} of {total:,} "
                    f"recipients sent (the limit assumes at least "
                    f"{BASELINE_TIMEOUT_MIN_RATE:.0f} recipients/s)"
                )
        if campaign.complete():
            broadcasts.broadcast_campaign(campaign)
    return sent


def figure_baseline(run: Run, registry: CampaignRegistry) -> None:
    total = run.size("baseline")
    say(f"Figure 2: baseline: the sequential dispatcher on {total:,} recipients, zero latency")
    say(
        "  one recipient at a time in this process: deliver, conditional UPDATE in its own "
        "transaction, render row + header partials and publish them to Redis"
    )
    campaign = create_seeded_campaign(registry, "figure 2 baseline", total)
    provider = SimulatedProvider(
        delay_min=0.0,
        delay_max=0.0,
        failure_rate=0.0,
        fail_email_domain=settings.DELIVERY_FAIL_EMAIL_DOMAIN,
        fail_phone_prefix=settings.DELIVERY_FAIL_PHONE_PREFIX,
    )
    try:
        started = time.perf_counter()
        with transaction.atomic():
            if not campaign.start():
                raise BenchError(f"baseline: campaign {campaign.pk} did not start")
        sent = deliver_sequentially(campaign, provider, total)
        seconds = time.perf_counter() - started
        campaign.refresh_from_db()
    finally:
        registry.delete([campaign.pk])

    if sent != total or campaign.status != Campaign.Status.COMPLETED:
        raise BenchError(
            f"baseline: {sent:,} of {total:,} recipients sent, campaign {campaign.status}"
        )
    rate = total / seconds
    say(f"  => {rate:,.0f} recipients/s ({total:,} in {seconds:.2f} s)")
    say()
    run.figures.append(
        Figure(
            2,
            "baseline (sequential, one by one)",
            f"{total:,} recipients, zero latency, 1 process",
            f"{rate:,.0f} recipients/s",
        )
    )


# ---------------------------------------------------------------------------
# Worker processes and their memory


def read_rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB; 0 for a process that is gone or has no memory."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as stat:
                text = stat.read()
        except OSError:
            continue
        # The command name in parentheses may contain spaces: the fields after
        # its closing parenthesis are the state, then the parent's pid.
        fields = text.rpartition(")")[2].split()
        children[int(fields[1])].append(int(entry.name))
    return children


def tree_rss_kib(pid: int, children: dict[int, list[int]]) -> int:
    """RSS of a process and all its descendants (Celery pool children), in KiB."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        total += read_rss_kib(current)
        stack.extend(children.get(current, ()))
    return total


class RssSampler(threading.Thread):
    """Samples each worker's RSS (main process plus children) every 0.2 s and keeps peaks."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pids = pids
        self.lock = threading.Lock()
        self.latest: dict[int, int] = dict.fromkeys(pids, 0)
        self.peaks: dict[int, int] = dict.fromkeys(pids, 0)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            children = children_by_parent()
            samples = {pid: tree_rss_kib(pid, children) for pid in self.pids}
            with self.lock:
                self.latest = samples
                for pid, kib in samples.items():
                    self.peaks[pid] = max(self.peaks[pid], kib)
            self.stopping.wait(RSS_SAMPLE_INTERVAL_SECONDS)

    def reset_peaks(self) -> None:
        with self.lock:
            self.peaks = dict(self.latest)

    def snapshot(self) -> tuple[dict[int, int], dict[int, int]]:
        """Return (latest, peak) RSS per worker pid, in KiB."""
        with self.lock:
            return dict(self.latest), dict(self.peaks)


def mib(kib: int) -> float:
    return kib / 1024


class WorkerSet:
    """Celery worker processes that this run starts, watches and stops by PID."""

    def __init__(self, label: str, overrides: dict[str, str], log_dir: Path) -> None:
        self.label = label
        self.loops = settings.DISPATCH_WORKERS_PER_CAMPAIGN
        # Each worker loop occupies a Celery thread for the whole campaign, and
        # a worker fetches a message only when a thread is free
        # (CELERY_WORKER_DISABLE_PREFETCH), so this splits a campaign's loops evenly.
        self.threads = math.ceil(self.loops / WORKER_PROCESSES)
        self.overrides = overrides
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_paths: list[Path] = []
        self.sampler: RssSampler | None = None

    def describe(self) -> str:
        return (
            f"{WORKER_PROCESSES} worker processes x {self.threads} Celery threads, "
            f"{self.loops} loops per campaign"
        )

    def start(self) -> None:
        env = dict(os.environ, **self.overrides)
        for index in range(WORKER_PROCESSES):
            log_path = self.log_dir / f"{self.label}-worker{index + 1}.log"
            command = [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool=threads", f"--concurrency={self.threads}",
                "-Q", f"{BENCH_QUEUE},{BENCH_CONTROL_QUEUE}",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel=INFO", "-n", f"bench{index + 1}-{RUN_ID}@%h",
            ]  # fmt: skip
            with open(log_path, "wb") as log:
                # A session of its own keeps a Ctrl-C in the terminal from
                # reaching the worker: the benchmark stops it in order.
                process = subprocess.Popen(
                    command,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.processes.append(process)
            self.log_paths.append(log_path)
        self._wait_until_ready()
        self.sampler = RssSampler([p.pid for p in self.processes])
        self.sampler.start()
        say(
            f"  started {self.describe()}: PIDs {', '.join(str(p.pid) for p in self.processes)}; "
            f"logs in {self.log_dir}"
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        pending = set(range(len(self.processes)))
        while pending:
            self.check_alive()
            for index in list(pending):
                if b" ready." in self.log_paths[index].read_bytes():
                    pending.discard(index)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"timed out after {WORKER_READY_TIMEOUT_SECONDS:.0f} s waiting for Celery "
                    f"workers to log 'ready'; see {', '.join(map(str, self.log_paths))}"
                )
            time.sleep(POLL_INTERVAL_SECONDS)

    def check_alive(self) -> None:
        for process, log_path in zip(self.processes, self.log_paths, strict=True):
            code = process.poll()
            if code is not None:
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise BenchError(
                    f"Celery worker PID {process.pid} exited with code {code}; "
                    f"end of {log_path}:\n{tail}"
                )

    def stop(self) -> None:
        """Stop every worker: SIGTERM (warm shutdown), then SIGKILL after a bounded wait."""
        if self.sampler is not None:
            self.sampler.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT_SECONDS
        for process in self.processes:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                say(
                    f"  worker PID {process.pid} did not stop within "
                    f"{WORKER_STOP_TIMEOUT_SECONDS:.0f} s of SIGTERM; sending SIGKILL"
                )
                process.kill()
                process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        if self.processes:
            say(f"  stopped worker PIDs {', '.join(str(p.pid) for p in self.processes)}")
        self.processes.clear()


@contextmanager
def running_workers(
    label: str, overrides: dict[str, str], registry: CampaignRegistry, log_dir: Path
) -> Iterator[WorkerSet]:
    """Start workers for the block, then stop them and delete the block's campaigns.

    Campaigns are deleted only after every worker has exited. A loop that
    still runs would otherwise record an attempt for a deleted recipient,
    and the delete would fail with an IntegrityError.
    """
    workers = WorkerSet(label, overrides, log_dir)
    earlier_ids = set(registry.ids)
    try:
        workers.start()
        yield workers
    finally:
        # Cancelled campaigns make their loops stop claiming within about
        # 0.2 s, so the warm shutdown below does not wait for a whole campaign.
        registry.cancel_processing()
        try:
            workers.stop()
        except BaseException:
            # A signal interrupted the stop. raise_system_exit ignores
            # repeated SIGTERMs, so a second stop runs to the end.
            workers.stop()
            raise
        registry.delete([pk for pk in registry.ids if pk not in earlier_ids])


# ---------------------------------------------------------------------------
# Engine runs


@dataclass
class EngineResult:
    total: int
    seconds: float
    database_seconds: float
    sent: int
    attempts: int
    peak_rss_kib: dict[int, int]

    @property
    def rate(self) -> float:
        return self.total / self.seconds


def engine_timeout(total: int) -> float:
    return ENGINE_TIMEOUT_BASE_SECONDS + total / ENGINE_TIMEOUT_MIN_RATE


def dispatch_and_wait(
    campaign: Campaign, total: int, workers: WorkerSet, timeout: float, label: str
) -> EngineResult:
    """Dispatch the campaign as the Dispatch button does and poll until it completes.

    The time runs from the start of the transaction that moves the campaign
    to processing until a poll (every 0.1 s) reads the status `completed`.
    """
    assert workers.sampler is not None
    workers.sampler.reset_peaks()
    progress = ProgressPrinter(label, total)
    started = time.perf_counter()
    with transaction.atomic():
        if not campaign.start():
            raise BenchError(f"{label}: campaign {campaign.pk} did not start")
        transaction.on_commit(partial(dispatch_campaign_later, campaign.pk))

    deadline = started + timeout
    processed = 0
    counted_at = started
    while True:
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True)[0]
        # Counting recipients costs a scan of the campaign's index entries, so
        # progress is counted every 5 s, not at every poll.
        if time.perf_counter() - counted_at >= 5:
            counted_at = time.perf_counter()
            processed = campaign.progress().processed
        if status == Campaign.Status.COMPLETED:
            break
        if status != Campaign.Status.PROCESSING:
            raise BenchError(f"{label}: campaign {campaign.pk} became {status}")
        workers.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"{label}: timed out after {timeout:.0f} s with {processed:,} of {total:,} "
                f"recipients done (the limit assumes at least {ENGINE_TIMEOUT_MIN_RATE:.0f} "
                f"recipients/s); worker logs: {', '.join(map(str, workers.log_paths))}"
            )
        latest, _ = workers.sampler.snapshot()
        rss = ", ".join(f"{mib(kib):.0f}" for kib in latest.values())
        progress.update(processed, f"; worker RSS {rss} MiB")
        time.sleep(POLL_INTERVAL_SECONDS)
    seconds = time.perf_counter() - started
    _, peaks = workers.sampler.snapshot()

    campaign.refresh_from_db()
    assert campaign.started_at is not None and campaign.completed_at is not None
    database_seconds = (campaign.completed_at - campaign.started_at).total_seconds()
    counts = campaign.progress()
    attempts = DeliveryAttempt.objects.filter(campaign=campaign).count()
    if counts.sent != total or attempts != total:
        raise BenchError(
            f"{label}: expected {total:,} sent recipients and attempts, found {counts} "
            f"and {attempts:,} attempts"
        )
    return EngineResult(total, seconds, database_seconds, counts.sent, attempts, peaks)


def warm_up(registry: CampaignRegistry, workers: WorkerSet, run: Run) -> None:
    """Dispatch a small campaign first, so that imports, template loading and
    connections are not part of the measured campaign."""
    size = run.size("warmup")
    campaign = create_seeded_campaign(registry, "warm-up", size)
    result = dispatch_and_wait(campaign, size, workers, engine_timeout(size), "warm-up")
    # Completed: no loop writes to it any more. After a failure,
    # running_workers deletes it once the workers have stopped.
    registry.delete([campaign.pk])
    say(f"  warm-up: {size:,} recipients in {result.seconds:.2f} s (not counted)")


def print_engine_result(result: EngineResult) -> None:
    peaks = ", ".join(f"PID {pid}: {mib(kib):.0f} MiB" for pid, kib in result.peak_rss_kib.items())
    say(
        f"  => {result.rate:,.0f} recipients/s ({result.total:,} in {result.seconds:.2f} s; "
        f"started_at to completed_at in the database: {result.database_seconds:.2f} s); "
        f"{result.sent:,} sent, {result.attempts:,} attempts recorded"
    )
    say(f"     peak worker RSS: {peaks}")


# ---------------------------------------------------------------------------
# Figure 3: engine throughput


def figure_engine(run: Run, registry: CampaignRegistry, log_dir: Path) -> None:
    total = run.size("engine")
    say(f"Figure 3: engine: {total:,} recipients, zero-latency provider, 2 worker processes")
    overrides = {"DELIVERY_CONCURRENCY": str(settings.DELIVERY_CONCURRENCY)}
    with running_workers("figure3", overrides, registry, log_dir) as workers:
        warm_up(registry, workers, run)
        campaign = create_seeded_campaign(registry, "figure 3 engine", total)
        result = dispatch_and_wait(
            campaign, total, workers, engine_timeout(total), "engine zero latency"
        )
        registry.delete([campaign.pk])
    print_engine_result(result)

    result_text = f"{result.rate:,.0f} recipients/s"
    targets_met = result.rate >= ENGINE_TARGET_RATE
    if run.raw_rate:
        ratio = result.rate / run.raw_rate
        targets_met = targets_met and ratio >= ENGINE_TARGET_SHARE_OF_RAW
        result_text += f" = {ratio:.1%} of (1)"
        say(f"     {ratio:.1%} of the raw limit ({run.raw_rate:,.0f} rows/s)")
    else:
        say("     no ratio to the raw limit: figure 1 did not run in this run")
    say()
    run.figures.append(
        Figure(
            3,
            "engine, zero latency",
            f"{total:,} recipients, {workers.describe()}, "
            f"DELIVERY_CONCURRENCY={settings.DELIVERY_CONCURRENCY}",
            result_text,
            f">= {ENGINE_TARGET_RATE:,.0f}/s and >= {ENGINE_TARGET_SHARE_OF_RAW:.0%} of (1)",
            verdict(run, targets_met) + ("" if run.raw_rate or run.quick else " (rate only)"),
        )
    )


# ---------------------------------------------------------------------------
# Figure 4: engine with latency


def latency_explanation(total: int, loops: int) -> str:
    mean = (LATENCY_MIN_SECONDS + LATENCY_MAX_SECONDS) / 2
    needed = total * mean / LATENCY_TARGET_SECONDS
    slots = loops * LATENCY_CONCURRENCY
    ideal = math.ceil(total / slots) * mean + (LATENCY_MAX_SECONDS - mean)
    return (
        f"  DELIVERY_CONCURRENCY={LATENCY_CONCURRENCY}: {total:,} messages x {mean:.1f} s mean "
        f"latency / {LATENCY_TARGET_SECONDS:.0f} s target needs about {needed:,.0f} deliveries "
        f"in flight across all loops.\n"
        f"  {loops} loops x {LATENCY_CONCURRENCY} threads = {slots:,} slots, so the ideal time "
        f"is about {ideal:.0f} s (rounds of {mean:.1f} s plus the slowest message's tail),\n"
        f"  which leaves room for claims and flushes on a loaded machine. The threads sleep "
        f"while a message is in flight, so they cost stack memory, not CPU."
    )


def figure_latency(run: Run, registry: CampaignRegistry, log_dir: Path) -> None:
    total = run.size("latency")
    say(
        f"Figure 4: engine with {LATENCY_MIN_SECONDS:.0f}-{LATENCY_MAX_SECONDS:.0f} s latency per "
        f"message, no rate limit: {total:,} recipients, 2 worker processes"
    )
    say(latency_explanation(total, settings.DISPATCH_WORKERS_PER_CAMPAIGN))
    overrides = {
        "DELIVERY_CONCURRENCY": str(LATENCY_CONCURRENCY),
        "DELIVERY_DELAY_MIN_SECONDS": str(LATENCY_MIN_SECONDS),
        "DELIVERY_DELAY_MAX_SECONDS": str(LATENCY_MAX_SECONDS),
    }
    with running_workers("figure4", overrides, registry, log_dir) as workers:
        campaign = create_seeded_campaign(registry, "figure 4 latency", total)
        result = dispatch_and_wait(
            campaign, total, workers, LATENCY_TIMEOUT_SECONDS, "engine 1-3 s latency"
        )
        registry.delete([campaign.pk])
    print_engine_result(result)
    say()
    run.figures.append(
        Figure(
            4,
            "engine, 1-3 s latency",
            f"{total:,} recipients, {workers.describe()}, "
            f"DELIVERY_CONCURRENCY={LATENCY_CONCURRENCY}, no rate limit",
            f"{result.seconds:.1f} s to completed",
            f"< {LATENCY_TARGET_SECONDS:.0f} s",
            verdict(run, result.seconds < LATENCY_TARGET_SECONDS),
        )
    )


# ---------------------------------------------------------------------------
# Figure 5: worker memory


def figure_memory(run: Run, registry: CampaignRegistry, log_dir: Path) -> None:
    sizes = run.memory_sizes()
    say(
        f"Figure 5: peak RSS per worker process (main process + children, sampled every "
        f"{RSS_SAMPLE_INTERVAL_SECONDS} s) while dispatching "
        f"{' then '.join(f'{n:,}' for n in sizes)} recipients, zero latency"
    )
    overrides = {"DELIVERY_CONCURRENCY": str(settings.DELIVERY_CONCURRENCY)}
    peaks_by_size: dict[int, dict[int, int]] = {}
    with running_workers("figure5", overrides, registry, log_dir) as workers:
        assert workers.sampler is not None
        warm_up(registry, workers, run)
        idle, _ = workers.sampler.snapshot()
        say(
            "  RSS after warm-up: "
            + ", ".join(f"PID {pid}: {mib(kib):.0f} MiB" for pid, kib in idle.items())
        )
        for size in sizes:
            campaign = create_seeded_campaign(registry, f"figure 5 memory {size}", size)
            result = dispatch_and_wait(
                campaign, size, workers, engine_timeout(size), f"memory {size:,}"
            )
            say(f"  deleting campaign {campaign.pk} ...")
            registry.delete([campaign.pk])
            print_engine_result(result)
            peaks_by_size[size] = result.peak_rss_kib

    small, large = sizes
    worst_small = max(peaks_by_size[small].values())
    worst_large = max(peaks_by_size[large].values())
    under_target = mib(worst_large) < RSS_TARGET_MIB and mib(worst_small) < RSS_TARGET_MIB
    flat = worst_large <= worst_small * (1 + RSS_FLAT_TOLERANCE)
    say(
        f"  => worst worker peak: {mib(worst_small):.0f} MiB at {small:,}, "
        f"{mib(worst_large):.0f} MiB at {large:,} "
        f"({'flat' if flat else 'growing'}: within {RSS_FLAT_TOLERANCE:.0%} is flat)"
    )
    say()
    for size in sizes:
        peaks = ", ".join(f"{mib(kib):.0f}" for kib in peaks_by_size[size].values())
        run.figures.append(
            Figure(
                5,
                f"peak worker RSS at {size:,}",
                f"{size:,} recipients, {workers.describe()}, zero latency, DEBUG={settings.DEBUG}",
                f"{peaks} MiB",
                f"< {RSS_TARGET_MIB:.0f} MiB, flat",
                verdict(run, under_target and flat) if size == large else "",
            )
        )


# ---------------------------------------------------------------------------
# Main


def delete_broker_keys() -> None:
    """Remove the Redis keys that the bench queues leave behind."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        # Each queue's list, and the binding tables that kombu keeps per
        # exchange (config/settings.py names each exchange after its queue).
        client.delete(
            *(
                key
                for queue in (BENCH_QUEUE, BENCH_CONTROL_QUEUE)
                for key in (queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            )
        )
    except redis.RedisError as exc:
        say(f"Could not delete the bench queues' Redis keys ({exc}); they are harmless.")
    finally:
        client.close()


def report_leftovers(delete: bool, name_prefix: str = CAMPAIGN_NAME_PREFIX) -> None:
    leftovers = list(
        Campaign.objects.filter(name__startswith=name_prefix).values_list("pk", flat=True)
    )
    if not leftovers:
        return
    if delete:
        say(f"Deleting {len(leftovers)} campaigns left by earlier runs: {leftovers}")
        CampaignRegistry(name_prefix).delete(leftovers)
    else:
        say(
            f"NOTE: {len(leftovers)} campaigns named '{name_prefix} ...' are left from "
            f"an earlier run that was killed ({leftovers}); rerun with --delete-leftovers to "
            "delete them, unless another benchmark is running on this database."
        )


def parse_figures(text: str) -> set[int]:
    try:
        numbers = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid figure list {text!r}: expected numbers from 1 to 5 such as 1,3"
        ) from None
    if not numbers or not numbers <= {1, 2, 3, 4, 5}:
        raise argparse.ArgumentTypeError(
            f"invalid figure list {text!r}: expected numbers from 1 to 5 such as 1,3"
        )
    return numbers


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the dispatch engine: raw database limit, sequential baseline, "
        "engine throughput, time with provider latency, and worker memory.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="divide every size by 10 for a smoke run"
    )
    parser.add_argument(
        "--only",
        type=parse_figures,
        default={1, 2, 3, 4, 5},
        metavar="N,...",
        help="run only these figures, for example 1,3 (default: all five)",
    )
    parser.add_argument(
        "--delete-leftovers",
        action="store_true",
        help=f"first delete campaigns named '{CAMPAIGN_NAME_PREFIX} ...' that a killed run left",
    )
    return parser.parse_args(argv)


def raise_system_exit(signum: int, _frame: object) -> None:
    say(f"Received {signal.Signals(signum).name}: stopping workers and deleting bench campaigns")
    # A second SIGTERM would interrupt the cleanup, for example between
    # stopping the workers and deleting the campaigns, so it is ignored.
    signal.signal(signal.SIGTERM, ignore_repeated_signal)
    raise SystemExit(128 + signum)


def ignore_repeated_signal(signum: int, _frame: object) -> None:
    say(f"Received {signal.Signals(signum).name} again: still cleaning up (SIGKILL stops at once)")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # SIGTERM exits through the finally blocks, which stop the workers.
    signal.signal(signal.SIGTERM, raise_system_exit)
    run = Run(quick=arguments.quick, only=arguments.only)
    registry = CampaignRegistry()
    log_dir = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))

    steps: list[tuple[int, Callable[[], None]]] = [
        (1, partial(figure_raw_limit, run, registry)),
        (2, partial(figure_baseline, run, registry)),
        (3, partial(figure_engine, run, registry, log_dir)),
        (4, partial(figure_latency, run, registry, log_dir)),
        (5, partial(figure_memory, run, registry, log_dir)),
    ]
    redis_reached = False
    try:
        require_loopback_servers()
        check_schema()
        check_redis()
        redis_reached = True
        print_environment(run)
        report_leftovers(arguments.delete_leftovers)
        for number, step in steps:
            if number not in run.only:
                continue
            try:
                step()
            except BenchError as exc:
                say(f"  FAILED: {exc}")
                say()
                run.failures.append(f"figure {number}: {exc}")
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    finally:
        registry.delete_all()
        if redis_reached:
            delete_broker_keys()
        remove_if_empty(log_dir)
        if log_dir.exists():
            say(f"Worker logs: {log_dir}")

    print_summary(run)
    say(f"Load average at the end: {load_average()}.")
    return 1 if run.failures else 0


def remove_if_empty(log_dir: Path) -> None:
    """Remove the log folder unless a worker wrote a log into it."""
    with suppress(OSError):
        if not any(log_dir.iterdir()):
            log_dir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
