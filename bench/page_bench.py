"""Benchmark the server-side render time of the campaign page at 100,000 recipients.

Run it from the project root, with PostgreSQL up and migrated:

    .venv/bin/python bench/page_bench.py [--quick] [--explain] [--earlier-campaigns N]

It creates campaigns of 100,000 recipients each: one earlier, completed
campaign (or N with --earlier-campaigns), so that the measured campaign's rows
are not the only ones in the table, and then the measured one, processing,
with most recipients sent, some failed, some queued (fresh ones and retries
that wait for their due time) and a few in flight. Then it requests the
campaign page (`campaigns.views.detail`) through `django.test.Client`, so
that middleware, every query and template rendering count, and prints per
case the median, 95th percentile and maximum of 20 timed requests after 2
warm-ups:

- the first and the last page of the table, unfiltered;
- the first and the last page filtered by a minority status (failed) and by
  the majority status (sent);
- the middle page, unfiltered: pages in the second half are read from the
  end of the table, so this page skips the most rows;
- the first page of a search (`q=`) that matches a few recipients.

The issue sets no target for the middle page or a search, so their rows are
informational.

A separate, untimed request of each case counts its queries. The summary
judges each case against the target of the issue: under 200 ms.

The script creates its campaigns in the database that DATABASE_URL names and
deletes them before it exits, also after an error, Ctrl-C or SIGTERM. It
refuses PostgreSQL and Redis servers that are not on loopback. It starts no
worker and publishes nothing: the campaign page does not use Redis.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import secrets
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

RUN_ID = str(os.getpid())
CAMPAIGN_NAME_PREFIX = "page_bench:"
# The user that the benchmark signs in as.
BENCH_USERNAME = "bench"

FULL_RECIPIENTS = 100_000
TIMED_REQUESTS = 20
WARMUP_REQUESTS = 2
TARGET_MS = 200.0
# The first page of a search for this text; it matches "Recipient 4242" and
# "Recipient 42420" to "Recipient 42429" (11 recipients in a full run).
SEARCH_TEXT = "Recipient 4242"

# The measured campaign, by position in id order (shares of its size). The
# engine claims fresh recipients in id order, so a processing campaign has
# its processed recipients first, then the claims in flight, then the
# recipients not tried yet.
PROCESSED_SHARE = 0.94
IN_FLIGHT_COUNT = 200
# Among processed positions, per mille, chosen by a hash of the position so
# that they are spread over the whole table: transient failures that used up
# their attempts, permanent failures, and retries waiting for their due time.
TRANSIENT_FAILED_PER_MILLE = 20
PERMANENT_FAILED_PER_MILLE = 20
RETRY_WAITING_PER_MILLE = 5
# The earlier campaign: completed, with this many failures per mille.
EARLIER_FAILED_PER_MILLE = 30


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production behaviour unless DEBUG is set in the environment: with DEBUG
    # on, Django keeps the SQL of every query, which costs time per query. A
    # key of this run's own satisfies the check that DEBUG off makes.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    # The benchmark's requests are plain http on loopback, which DEBUG off
    # would otherwise redirect to https.
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "false")
    # Without collectstatic, WhiteNoise warns that STATIC_ROOT is missing; the
    # page only links to static files, so they need not exist.
    warnings.filterwarnings("ignore", message="No directory at")


configure_environment()

import django  # noqa: E402  (the environment must be set before Django loads)

django.setup()

from bench_workspace import bench_member, bench_workspace  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import DatabaseError, OperationalError, connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from machine import cpu_model, is_loopback, load_average, memory_total_gib  # noqa: E402

from campaigns.models import Campaign, DeliveryAttempt, Recipient, StatusCountChange  # noqa: E402
from campaigns.views import RECIPIENTS_PER_PAGE  # noqa: E402

RECIPIENTS = Recipient._meta.db_table
CAMPAIGNS = Campaign._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table
STATUS_COUNTS = StatusCountChange._meta.db_table


class BenchError(Exception):
    """A case could not be measured; the message states why and what to check."""


def say(message: str = "") -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------
# Results


@dataclass
class Case:
    """One request of the campaign page: its label, query string and expected rows."""

    label: str
    params: dict[str, str]
    expected_rows: int
    expected_summary: str
    informational: bool = False


@dataclass
class Result:
    case: Case
    queries: int
    sql_ms: float
    timings_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p95(self) -> float:
        # Nearest rank: the 19th of 20 sorted timings.
        ordered = sorted(self.timings_ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]

    @property
    def maximum(self) -> float:
        return max(self.timings_ms)


@dataclass
class Run:
    quick: bool
    explain: bool
    earlier_campaigns: int
    results: list[Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> int:
        return FULL_RECIPIENTS // 10 if self.quick else FULL_RECIPIENTS


QUICK_VERDICT = "not judged at --quick size"


def verdict(run: Run, result: Result) -> str:
    if result.case.informational:
        return "(informational)"
    if run.quick:
        return QUICK_VERDICT
    return "met" if result.median < TARGET_MS else "MISSED"


def print_summary(run: Run) -> None:
    header = (
        "case",
        "query string",
        "queries",
        "SQL ms",
        "median ms",
        "p95 ms",
        "max ms",
        "target",
        "verdict",
    )
    rows = [
        (
            r.case.label,
            "?" + urlencode(r.case.params) if r.case.params else "(none)",
            str(r.queries),
            f"{r.sql_ms:.1f}",
            f"{r.median:.1f}",
            f"{r.p95:.1f}",
            f"{r.maximum:.1f}",
            "-" if r.case.informational else f"< {TARGET_MS:.0f} ms",
            verdict(run, r),
        )
        for r in run.results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    say()
    say(
        f"Summary: server-side time of the campaign page, {run.recipients:,} recipients "
        f"after {run.earlier_campaigns} earlier campaign"
        f"{'s' if run.earlier_campaigns != 1 else ''} of as many, "
        f"median of {TIMED_REQUESTS} after {WARMUP_REQUESTS} warm-ups"
        + (" (--quick: a tenth of a full run)" if run.quick else "")
    )
    say(line)
    say("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    say(line)
    for row in rows:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    say(line)
    say(
        "queries and SQL ms: from one more, untimed request of the case, with the "
        "queries captured (their time is part of the median)."
    )
    for failure in run.failures:
        say(f"FAILED: {failure}")


# ---------------------------------------------------------------------------
# Environment report and checks


def require_loopback_servers() -> None:
    database_host = settings.DATABASES["default"].get("HOST")
    if not is_loopback(database_host):
        raise BenchError(
            f"DATABASE_URL points at {database_host!r}, which is not a loopback address; "
            "the benchmark writes hundreds of thousands of recipients, so run it against a "
            "local server (for example DATABASE_URL=postgres://postgres@127.0.0.1:5432/cd_bench)"
        )
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        host = urlsplit(getattr(settings, name)).hostname
        if not is_loopback(host):
            raise BenchError(
                f"{name} points at {host!r}, which is not a loopback address; "
                "run the benchmark with local servers only"
            )


def check_schema() -> None:
    name = settings.DATABASES["default"]["NAME"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s), to_regclass(%s)", [RECIPIENTS, STATUS_COUNTS])
            found = cursor.fetchone()
    except OperationalError as exc:
        raise BenchError(
            f"cannot connect to database {name!r} ({exc}); create it with "
            f"`createdb -h 127.0.0.1 -U postgres {name}` or point DATABASE_URL at another, "
            "then migrate it"
        ) from exc
    if found is None or None in found:
        raise BenchError(
            f"the tables {RECIPIENTS} and {STATUS_COUNTS} are missing from database "
            f"{name!r}; run `DEBUG=true .venv/bin/python manage.py migrate` with the same "
            "DATABASE_URL"
        )


def print_environment(run: Run) -> None:
    say("Campaign page benchmark" + (" (--quick: sizes divided by 10)" if run.quick else ""))
    say(
        f"  machine: {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{memory_total_gib():.1f} GiB memory, load average {load_average()} at start"
    )
    say(f"  software: Python {platform.python_version()}, Django {django.get_version()}")
    database = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
        facts = {}
        for name in ("shared_buffers", "work_mem", "jit", "autovacuum"):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    say(f"  PostgreSQL: {version}")
    say(
        f"    database {database['NAME']!r} at {database.get('HOST') or 'local socket'}:"
        f"{database.get('PORT') or 5432}; "
        + ", ".join(f"{key}={value}" for key, value in facts.items())
    )
    say(
        f"  settings: DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']} "
        f"DEBUG={settings.DEBUG} CONN_MAX_AGE={database.get('CONN_MAX_AGE')}"
    )
    if settings.DEBUG:
        say(
            "    NOTE: with DEBUG on, Django keeps the text of every query, which adds time "
            "to each request. Unset DEBUG to measure without it."
        )
    say(
        f"  requests: django.test.Client in this process, {WARMUP_REQUESTS} warm-ups then "
        f"{TIMED_REQUESTS} timed per case, one at a time; the database connection stays "
        "open between requests, so connecting is not measured"
    )
    say()


# ---------------------------------------------------------------------------
# Campaigns and recipients


class CampaignRegistry:
    """Bench campaigns created by this run, so that every exit path deletes them."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def create(self, label: str, **fields: object) -> Campaign:
        campaign = Campaign.objects.create(
            workspace=bench_workspace(),
            name=f"{CAMPAIGN_NAME_PREFIX} {label} (run {RUN_ID})",
            **fields,
        )
        self.ids.append(campaign.pk)
        return campaign

    def delete(self, campaign_ids: list[int]) -> None:
        """Delete campaigns with their recipients, attempts and status counts in SQL.

        The ORM's cascade would load every recipient into memory first.
        """
        if not campaign_ids:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {ATTEMPTS} WHERE campaign_id = ANY(%s)", [campaign_ids])
            cursor.execute(f"DELETE FROM {RECIPIENTS} WHERE campaign_id = ANY(%s)", [campaign_ids])
            cursor.execute(f"DELETE FROM {CAMPAIGNS} WHERE id = ANY(%s)", [campaign_ids])
            # The delete trigger added rows that bring the counts to zero; the
            # sweep's fold would drop them, but nothing of the run is left.
            cursor.execute(
                f"DELETE FROM {STATUS_COUNTS} WHERE campaign_id = ANY(%s)", [campaign_ids]
            )
        self.ids = [pk for pk in self.ids if pk not in campaign_ids]

    def delete_all(self) -> None:
        if not self.ids:
            return
        say(f"Deleting bench campaigns {self.ids} ...")
        try:
            self.delete(list(self.ids))
        except DatabaseError:
            # A query interrupted by Ctrl-C can leave the connection unusable;
            # a new connection can still delete.
            connection.close()
            self.delete(list(self.ids))


# Columns written by the seeding statements. Every column without a database
# default is written, because Django keeps model defaults in Python.
SEED_COLUMNS = (
    "campaign_id, name, email, phone_number, status, failure_reason, processed_at, attempts, "
    "attempt_base, next_attempt_at, claim_token, claimed_at, lease_expires_at, "
    "last_error_transient, provider_message_id"
)

# An earlier, completed campaign: sent, or failed permanently. `h` is a hash of
# the position, in per mille.
EARLIER_SQL = f"""
INSERT INTO {RECIPIENTS} ({SEED_COLUMNS})
SELECT %(campaign)s, 'Recipient ' || g, 'r' || g || '@bench.example.com',
       CASE WHEN g %% 3 = 0 THEN '+1555' || lpad(g::text, 7, '0') ELSE '' END,
       CASE WHEN h < %(failed)s THEN 'failed' ELSE 'sent' END,
       CASE WHEN h < %(failed)s THEN 'Permanent error: mailbox unavailable' ELSE '' END,
       %(finished)s, 1, 0, NULL, NULL, NULL, NULL, false,
       CASE WHEN h < %(failed)s THEN '' ELSE 'sim-' || md5(g::text) END
  FROM (SELECT g, abs(hashint4(g::integer)) %% 1000 AS h
          FROM generate_series(1, %(count)s) AS g) AS p
 ORDER BY g
"""

# The measured campaign, part way through its dispatch. Each recipient gets
# the fields that the engine writes for its status (dispatch/claims.py).
MEASURED_SQL = f"""
INSERT INTO {RECIPIENTS} ({SEED_COLUMNS})
SELECT %(campaign)s, 'Recipient ' || g, 'r' || g || '@bench.example.com',
       CASE WHEN g %% 3 = 0 THEN '+1555' || lpad(g::text, 7, '0') ELSE '' END,
       CASE WHEN kind = 'fresh' THEN 'queued'
            WHEN kind = 'in_flight' THEN 'in_flight'
            WHEN kind = 'retry' THEN 'queued'
            WHEN kind IN ('transient', 'permanent') THEN 'failed'
            ELSE 'sent' END,
       CASE WHEN kind = 'transient' THEN 'Transient error: provider timed out'
            WHEN kind = 'permanent' THEN 'Permanent error: mailbox unavailable'
            ELSE '' END,
       CASE WHEN kind IN ('sent', 'transient', 'permanent') THEN %(finished)s END,
       CASE WHEN kind = 'transient' THEN 3 WHEN kind = 'fresh' THEN 0 ELSE 1 END,
       0,
       CASE WHEN kind = 'retry' THEN %(retry_at)s END,
       CASE WHEN kind = 'in_flight' THEN gen_random_uuid() END,
       CASE WHEN kind = 'in_flight' THEN %(claimed_at)s END,
       CASE WHEN kind = 'in_flight' THEN %(lease_expires_at)s END,
       kind IN ('transient', 'retry'),
       CASE WHEN kind = 'sent' THEN 'sim-' || md5(g::text) ELSE '' END
  FROM (SELECT g,
               CASE WHEN g > %(processed)s + %(in_flight)s THEN 'fresh'
                    WHEN g > %(processed)s THEN 'in_flight'
                    WHEN h < %(transient)s THEN 'transient'
                    WHEN h < %(transient)s + %(permanent)s THEN 'permanent'
                    WHEN h < %(transient)s + %(permanent)s + %(retry)s THEN 'retry'
                    ELSE 'sent' END AS kind
          FROM (SELECT g, abs(hashint4(g::integer)) %% 1000 AS h
                  FROM generate_series(1, %(count)s) AS g) AS hashed) AS p
 ORDER BY g
"""


def seed(statement: str, params: dict[str, Any]) -> float:
    """Run one INSERT ... SELECT through the recipients table; returns seconds.

    The rows go in through the table like any other insert, so the status
    count triggers record them.
    """
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
    return time.perf_counter() - started


def create_campaigns(registry: CampaignRegistry, count: int, earlier_campaigns: int) -> Campaign:
    """Create the earlier campaigns and the measured one; returns the measured one."""
    now = timezone.now()
    for number in range(earlier_campaigns, 0, -1):
        earlier = registry.create(
            f"earlier campaign {number}",
            status=Campaign.Status.COMPLETED,
            created_at=now - timedelta(days=number),
            started_at=now - timedelta(days=number),
            completed_at=now - timedelta(days=number) + timedelta(hours=1),
        )
        seconds = seed(
            EARLIER_SQL,
            {
                "campaign": earlier.pk,
                "count": count,
                "failed": EARLIER_FAILED_PER_MILLE,
                "finished": now - timedelta(days=number) + timedelta(hours=1),
            },
        )
        say(
            f"  created earlier campaign {earlier.pk}: {count:,} recipients, completed "
            f"(INSERT ... SELECT in {seconds:.1f} s)"
        )

    measured = registry.create(
        "measured campaign",
        status=Campaign.Status.PROCESSING,
        started_at=now - timedelta(minutes=5),
    )
    processed = round(count * PROCESSED_SHARE)
    in_flight = min(IN_FLIGHT_COUNT, count - processed)
    seconds = seed(
        MEASURED_SQL,
        {
            "campaign": measured.pk,
            "count": count,
            "processed": processed,
            "in_flight": in_flight,
            "transient": TRANSIENT_FAILED_PER_MILLE,
            "permanent": PERMANENT_FAILED_PER_MILLE,
            "retry": RETRY_WAITING_PER_MILLE,
            "finished": now - timedelta(minutes=1),
            "retry_at": now + timedelta(seconds=30),
            "claimed_at": now,
            "lease_expires_at": now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
        },
    )
    say(
        f"  created measured campaign {measured.pk}: {count:,} recipients, processing "
        f"(INSERT ... SELECT in {seconds:.1f} s)"
    )

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {RECIPIENTS}, {STATUS_COUNTS}")
    say(
        f"  VACUUM (ANALYZE) of {RECIPIENTS} and {STATUS_COUNTS} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    check_counts(measured)
    return measured


def check_counts(campaign: Campaign) -> None:
    """Compare the trigger-maintained counts with a count of the rows, and print them."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, count(*) FROM {RECIPIENTS} WHERE campaign_id = %s GROUP BY status",
            [campaign.pk],
        )
        counted = dict(cursor.fetchall())
    progress = campaign.progress()
    from_triggers = {
        status: getattr(progress, status)
        for status in Recipient.Status.values
        if getattr(progress, status)
    }
    if from_triggers != counted:
        raise BenchError(
            f"the status counts of campaign {campaign.pk} ({from_triggers}) differ from a "
            f"count of its recipients ({counted}); check the triggers of migration 0004"
        )
    say(
        "  measured campaign's recipients by status: "
        + ", ".join(f"{status} {count:,}" for status, count in sorted(counted.items()))
    )


# ---------------------------------------------------------------------------
# Cases and requests


ROW_ID = re.compile(r'<tr id="recipient_\d+"')
PAGE_SUMMARY = re.compile(r"<span[^>]*data-page-summary>([^<]*)</span>")


def page_cases(campaign: Campaign) -> list[Case]:
    """The cases to measure, with the rows and page summary each must show."""
    progress = campaign.progress()
    cases = []
    for label, status, count in (
        ("all statuses", None, progress.total),
        ("status=failed (minority)", Recipient.Status.FAILED, progress.failed),
        ("status=sent (majority)", Recipient.Status.SENT, progress.sent),
    ):
        if count == 0:
            raise BenchError(f"the measured campaign has no recipient with status {status}")
        last = math.ceil(count / RECIPIENTS_PER_PAGE)
        base = {"status": str(status)} if status else {}
        first_rows = min(count, RECIPIENTS_PER_PAGE)
        last_rows = count - (last - 1) * RECIPIENTS_PER_PAGE
        cases.append(
            Case(
                f"first page, {label}",
                base,
                first_rows,
                f"Recipients 1\N{EN DASH}{first_rows} of {count} · page 1 of {last}",
            )
        )
        cases.append(
            Case(
                f"last page, {label}",
                {**base, "page": str(last)},
                last_rows,
                f"Recipients {count - last_rows + 1}\N{EN DASH}{count} of {count} · "
                f"page {last} of {last}",
            )
        )
    # The page that reads the most rows: later pages are read from the end.
    middle = math.ceil(progress.total / RECIPIENTS_PER_PAGE) // 2
    cases.append(
        Case(
            "middle page, all statuses",
            {"page": str(middle)},
            RECIPIENTS_PER_PAGE,
            f"Recipients {(middle - 1) * RECIPIENTS_PER_PAGE + 1}\N{EN DASH}"
            f"{middle * RECIPIENTS_PER_PAGE} of {progress.total} · page {middle} of "
            f"{math.ceil(progress.total / RECIPIENTS_PER_PAGE)}",
            informational=True,
        )
    )
    matches = campaign.recipients.filter(name__icontains=SEARCH_TEXT).count()
    if matches == 0:
        raise BenchError(f"no recipient of the measured campaign matches {SEARCH_TEXT!r}")
    shown = min(matches, RECIPIENTS_PER_PAGE)
    cases.append(
        Case(
            f"search, first page ({matches} match{'es' if matches != 1 else ''})",
            {"q": SEARCH_TEXT},
            shown,
            f"Recipients 1\N{EN DASH}{shown} of {matches} · page 1 of "
            f"{math.ceil(matches / RECIPIENTS_PER_PAGE)}",
            informational=True,
        )
    )
    return cases


def request_page(client: Client, url: str, case: Case) -> None:
    """Request the page and check that it shows what the case expects."""
    response = client.get(url, case.params)
    if response.status_code != 200:
        raise BenchError(f"{case.label}: GET {url} returned {response.status_code}")
    html = response.content.decode()
    rows = len(ROW_ID.findall(html))
    summary = PAGE_SUMMARY.search(html)
    shown = summary.group(1) if summary else "no page summary"
    if rows != case.expected_rows or shown != case.expected_summary:
        raise BenchError(
            f"{case.label}: the page shows {rows} rows and {shown!r}; expected "
            f"{case.expected_rows} rows and {case.expected_summary!r}"
        )


def explain(queries: list[dict[str, str]]) -> None:
    """Print EXPLAIN ANALYZE of each captured SELECT (--explain)."""
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            say(f"      {sql}")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            for (line,) in cursor.fetchall():
                say(f"        {line}")


def measure(run: Run, client: Client, url: str, case: Case) -> Result:
    for _ in range(WARMUP_REQUESTS):
        request_page(client, url, case)
    timings = []
    for _ in range(TIMED_REQUESTS):
        started = time.perf_counter()
        request_page(client, url, case)
        timings.append((time.perf_counter() - started) * 1000)
    # Untimed: capturing forces Django's debug cursor, which costs time. Its
    # query times are rounded to the millisecond, so a wrapper times them.
    sql_seconds: list[float] = []

    def timed_query(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds.append(time.perf_counter() - started)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed_query):
        request_page(client, url, case)
    sql_ms = sum(sql_seconds) * 1000
    result = Result(case, len(captured), sql_ms, timings)
    say(
        f"  {case.label}: median {result.median:.1f} ms, p95 {result.p95:.1f} ms, "
        f"max {result.maximum:.1f} ms; {result.queries} queries, {sql_ms:.1f} ms in SQL"
    )
    if run.explain:
        explain(captured.captured_queries)
    return result


def bench_user() -> Any:
    """Return the user that the benchmark signs in as, creating it if needed."""
    return bench_member(BENCH_USERNAME)


def measure_pages(run: Run, campaign: Campaign) -> None:
    url = campaign.get_absolute_url()
    cases = page_cases(campaign)
    say(
        f"Campaign page {url}: {len(cases)} cases, {RECIPIENTS_PER_PAGE} rows a page, "
        f"target < {TARGET_MS:.0f} ms (median)"
    )
    # ALLOWED_HOSTS contains loopback names only. The test client's default
    # host, "testserver", is allowed only inside the test runner.
    client = Client(HTTP_HOST="127.0.0.1")
    # Every page needs a signed-in user; the bench user is kept between runs.
    client.force_login(bench_user())
    for case in cases:
        try:
            run.results.append(measure(run, client, url, case))
        except BenchError as exc:
            say(f"  FAILED: {exc}")
            run.failures.append(str(exc))


# ---------------------------------------------------------------------------
# Main


def report_leftovers(delete: bool) -> None:
    leftovers = list(
        Campaign.objects.filter(name__startswith=CAMPAIGN_NAME_PREFIX).values_list("pk", flat=True)
    )
    if not leftovers:
        return
    if delete:
        say(f"Deleting {len(leftovers)} campaigns left by earlier runs: {leftovers}")
        CampaignRegistry().delete(leftovers)
    else:
        say(
            f"NOTE: {len(leftovers)} campaigns named '{CAMPAIGN_NAME_PREFIX} ...' are left from "
            f"an earlier run that was killed ({leftovers}); rerun with --delete-leftovers to "
            "delete them, unless another benchmark is running on this database. They add "
            "rows to the recipients table, so they change what is measured."
        )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: expected 1 or more")
    return value


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the server-side render time of the campaign page at "
        f"{FULL_RECIPIENTS:,} recipients: first and last page, unfiltered, filtered by "
        "status, and a search.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="divide the campaign sizes by 10 for a smoke run"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of each query of each case",
    )
    parser.add_argument(
        "--earlier-campaigns",
        type=positive_int,
        default=1,
        metavar="N",
        help="create N earlier, completed campaigns of the same size before the measured "
        "one (default: 1)",
    )
    parser.add_argument(
        "--delete-leftovers",
        action="store_true",
        help=f"first delete campaigns named '{CAMPAIGN_NAME_PREFIX} ...' that a killed run left",
    )
    return parser.parse_args(argv)


def raise_system_exit(signum: int, _frame: object) -> None:
    say(f"Received {signal.Signals(signum).name}: deleting bench campaigns")
    raise SystemExit(128 + signum)


def ignore_during_cleanup(signum: int, _frame: object) -> None:
    say(
        f"Received {signal.Signals(signum).name}: still deleting bench campaigns "
        "(SIGKILL stops at once and leaves them behind)"
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # SIGTERM exits through the finally block, which deletes the campaigns.
    signal.signal(signal.SIGTERM, raise_system_exit)
    run = Run(
        quick=arguments.quick,
        explain=arguments.explain,
        earlier_campaigns=arguments.earlier_campaigns,
    )
    registry = CampaignRegistry()
    try:
        require_loopback_servers()
        check_schema()
        print_environment(run)
        report_leftovers(arguments.delete_leftovers)
        say(
            f"Creating {run.earlier_campaigns} earlier campaign"
            f"{'s' if run.earlier_campaigns != 1 else ''} and the measured campaign, "
            f"{run.recipients:,} recipients each"
        )
        campaign = create_campaigns(registry, run.recipients, run.earlier_campaigns)
        say()
        measure_pages(run, campaign)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    except KeyboardInterrupt:
        say("Interrupted: deleting bench campaigns")
        return 130
    finally:
        # Ctrl-C or SIGTERM during the deletion would leave the campaigns
        # behind, so both wait until it is done.
        previous = signal.signal(signal.SIGINT, ignore_during_cleanup)
        signal.signal(signal.SIGTERM, ignore_during_cleanup)
        registry.delete_all()
        signal.signal(signal.SIGINT, previous)

    print_summary(run)
    say(f"Load average at the end: {load_average()}.")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
