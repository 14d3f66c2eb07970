"""Benchmark the CSV export of a campaign of 1,000,000 recipients.

Run it from the project root, with PostgreSQL up and migrated:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cd_bench \\
        .venv/bin/python bench/export_bench.py [--quick] [--recipients N]

It creates one campaign with generated recipients (one INSERT ... SELECT),
then calls the async export view (`campaigns.export.export_csv`) in this
process on an asyncio loop, as uvicorn does, and consumes the streamed body
chunk by chunk without keeping it. It prints the rows per second, the bytes
sent, the largest chunk, and the peak resident memory of the process
(`resource.getrusage`) before and after the export, so a body held in memory
would show as growth.

The campaign is deleted before the script exits, also after an error,
Ctrl-C or SIGTERM. The script rejects a PostgreSQL server that is not on
loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import secrets
import signal
import sys
import time
import warnings
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

FULL_RECIPIENTS = 1_000_000
CAMPAIGN_NAME_PREFIX = "export_bench:"


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production behaviour unless DEBUG is set: with DEBUG on, Django keeps
    # the SQL of every query. A key of this run's own satisfies the check
    # that DEBUG off makes.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    warnings.filterwarnings("ignore", message="No directory at")


configure_environment()

import django  # noqa: E402  (the environment must be set before Django loads)

django.setup()

from bench_workspace import bench_workspace  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from machine import cpu_model, is_loopback, load_average, memory_total_gib  # noqa: E402

from campaigns import export  # noqa: E402
from campaigns.models import Campaign, Recipient, StatusCountChange  # noqa: E402

RECIPIENTS = Recipient._meta.db_table
CAMPAIGNS = Campaign._meta.db_table
STATUS_COUNTS = StatusCountChange._meta.db_table

# Every NOT NULL column is written, because Django keeps most model defaults
# in Python. A third of the recipients have a phone number only, a third an
# email only, and a third both; names contain non-ASCII letters.
SEED_SQL = f"""
INSERT INTO {RECIPIENTS}
       (campaign_id, name, email, phone_number, status, failure_reason, processed_at,
        attempts, attempt_base, next_attempt_at, claim_token, claimed_at, lease_expires_at,
        last_error_transient, provider_message_id, version)
SELECT %(campaign)s,
       'Recipient ' || g || ' Ørsted',
       CASE WHEN g %% 3 <> 1 THEN 'recipient' || g || '@example.com' ELSE '' END,
       CASE WHEN g %% 3 <> 0 THEN '+1202' || lpad(g::text, 7, '0') ELSE '' END,
       'queued', '', NULL, 0, 0, NULL, NULL, NULL, NULL, false, '', 0
  FROM generate_series(1, %(count)s) AS g
 ORDER BY g
"""


class BenchError(Exception):
    """The export could not be measured; the message states why."""


def say(message: str = "") -> None:
    print(message, flush=True)


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def require_loopback_database() -> None:
    host = settings.DATABASES["default"].get("HOST")
    if not is_loopback(host):
        raise BenchError(
            f"DATABASE_URL points at {host!r}, which is not a loopback address; the "
            "benchmark writes a million recipients, so run it against a local server "
            "(for example DATABASE_URL=postgres://postgres@127.0.0.1:5432/cd_bench)"
        )


def create_campaign(count: int) -> Campaign:
    campaign = Campaign.objects.create(
        workspace=bench_workspace(), name=f"{CAMPAIGN_NAME_PREFIX} run {os.getpid()}"
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"campaign": campaign.pk, "count": count})
    say(
        f"  created campaign {campaign.pk}: {count:,} recipients "
        f"(INSERT ... SELECT in {time.perf_counter() - started:.1f} s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {RECIPIENTS}")
    return campaign


def delete_campaign(campaign_id: int) -> None:
    """Delete the campaign, its recipients and status counts in SQL, not through the ORM."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {RECIPIENTS} WHERE campaign_id = %s", [campaign_id])
        cursor.execute(f"DELETE FROM {CAMPAIGNS} WHERE id = %s", [campaign_id])
        cursor.execute(f"DELETE FROM {STATUS_COUNTS} WHERE campaign_id = %s", [campaign_id])


async def consume(campaign_id: int) -> tuple[int, int, int, int]:
    """Stream the export; return (chunks, bytes, largest chunk in bytes, data rows)."""
    request = RequestFactory().get(f"/campaigns/{campaign_id}/export.csv", HTTP_HOST="127.0.0.1")
    response = await export.export_csv(request, campaign_id)
    if not isinstance(response, StreamingHttpResponse) or not response.is_async:
        raise BenchError("the export view did not return an async streaming response")
    chunks = total = largest = lines = 0
    async for chunk in response.streaming_content:  # type: ignore[union-attr]
        chunks += 1
        total += len(chunk)
        largest = max(largest, len(chunk))
        lines += chunk.count(b"\r\n")
    # The header line is not a recipient.
    return chunks, total, largest, lines - 1


def measure(campaign: Campaign, count: int) -> None:
    # The campaign's rows were just written by this process; the seeding
    # does not count toward the export's memory.
    before = peak_rss_mib()
    started = time.perf_counter()
    chunks, total, largest, rows = asyncio.run(consume(campaign.pk))
    seconds = time.perf_counter() - started
    after = peak_rss_mib()
    if rows != count:
        raise BenchError(f"the export has {rows:,} data rows; expected {count:,}")
    say()
    say(
        f"Export of {rows:,} recipients: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, "
        f"{total / 1024 / 1024:.1f} MiB in {chunks:,} chunks "
        f"(largest {largest / 1024:.0f} KiB, {export.EXPORT_CHUNK_SIZE} rows per query)"
    )
    say(f"Peak RSS: {before:.1f} MiB before the export, {after:.1f} MiB after it")


def print_environment(count: int) -> None:
    say(f"CSV export benchmark, {count:,} recipients")
    say(
        f"  machine: {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{memory_total_gib():.1f} GiB memory, load average {load_average()} at start"
    )
    say(f"  software: Python {platform.python_version()}, Django {django.get_version()}")
    database = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
    say(f"  PostgreSQL: {version}")
    say(f"    database {database['NAME']!r} at {database.get('HOST') or 'local socket'}")
    say(
        "  the view runs in this process on an asyncio loop; its queries run in "
        "sync_to_async threads that reconnect for each chunk, as under uvicorn"
    )
    say()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: expected 1 or more")
    return value


def raise_system_exit(signum: int, _frame: object) -> None:
    say(f"Received {signal.Signals(signum).name}: deleting the bench campaign")
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Measure the CSV export of a campaign of {FULL_RECIPIENTS:,} recipients."
    )
    parser.add_argument(
        "--quick", action="store_true", help="export a tenth of the recipients for a smoke run"
    )
    parser.add_argument(
        "--recipients",
        type=positive_int,
        metavar="N",
        help=f"export N recipients (default: {FULL_RECIPIENTS:,})",
    )
    arguments = parser.parse_args(argv)
    count = arguments.recipients or (FULL_RECIPIENTS // 10 if arguments.quick else FULL_RECIPIENTS)
    signal.signal(signal.SIGTERM, raise_system_exit)
    campaign_id: int | None = None
    try:
        require_loopback_database()
        print_environment(count)
        campaign = create_campaign(count)
        campaign_id = campaign.pk
        measure(campaign, count)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    except KeyboardInterrupt:
        say("Interrupted: deleting the bench campaign")
        return 130
    finally:
        if campaign_id is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                delete_campaign(campaign_id)
            except DatabaseError:
                connection.close()
                delete_campaign(campaign_id)
    say(f"Load average at the end: {load_average()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
