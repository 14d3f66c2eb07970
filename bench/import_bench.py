"""Benchmark the CSV import: rows per second and peak memory at growing file sizes.

Run it from the project root, with PostgreSQL up and migrated:

    .venv/bin/python bench/import_bench.py [--sizes 250000,500000,1000000] [--processes N]

For each size it generates a CSV file of that many rows: name, email and
phone in mixed formats, with about 2% of rows invalid and 1% duplicates of
an earlier row. It creates a pending campaign and runs the import job
(`imports.jobs.run_import`) in a fresh process, so that each size's peak
memory is its own. It prints per size the time to stage the rows
(validation in worker processes and COPY), the time of the final
transaction (duplicates in SQL and the insert into the campaign), rows per
second over both, and the peak resident memory of the job's process and of
its worker processes. Peak memory should stay flat as the file grows, and
1,000,000 rows should take under 60 s on a 2-core machine.

The script creates its campaigns in the database that DATABASE_URL names
and deletes them before it exits, also after an error or Ctrl-C. It refuses a
PostgreSQL server that is not on loopback. It publishes progress to Redis as
the job always does (REDIS_URL, loopback only too).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

DEFAULT_SIZES = (250_000, 500_000, 1_000_000)
TARGET_SECONDS_PER_MILLION = 60.0
CAMPAIGN_NAME_PREFIX = "import_bench:"
INVALID_SHARE = 0.02
DUPLICATE_SHARE = 0.01

FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Perlman"]
# Bad values of the kinds that real files have.
BAD_EMAILS = ["not-an-email", "ada@@example.com", "ada@localhost", "ada lovelace@example.com"]
BAD_PHONES = ["4.47700E+11", "12345", "202 555 CALL", "#N/A", "447911123456.0"]


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


def say(message: str = "") -> None:
    print(message, flush=True)


def valid_prefixes() -> tuple[list[int], list[int]]:
    """Return US area codes and exchanges that libphonenumber accepts."""
    import phonenumbers

    def valid(number: str) -> bool:
        parsed = phonenumbers.parse(number)
        # Caribbean and Canadian area codes have rules of their own; US ones
        # accept every exchange that the check with area 212 accepts.
        return (
            phonenumbers.is_valid_number(parsed)
            and phonenumbers.region_code_for_number(parsed) == "US"
        )

    areas = [area for area in range(201, 990) if valid(f"+1{area}2345678")]
    exchanges = [exchange for exchange in range(201, 990) if valid(f"+1212{exchange}4567")]
    return areas, exchanges


def write_file(path: Path, rows: int, seed: int = 5) -> None:
    """Write `rows` data rows after a header; a fixed seed gives the same file each time."""
    rng = random.Random(seed)
    areas, exchanges = valid_prefixes()
    with path.open("w", newline="", encoding="utf-8") as output:
        writer = csv.writer(output)
        writer.writerow(["Full name", "E-mail Address", "Mobile Phone", "Notes"])
        for number in range(rows):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {number}"
            email = f"person.{number}@Example{number % 97}.com"
            # A different valid number per row: area, exchange and line are
            # the digits of `number` in a mixed radix.
            area = areas[number % len(areas)]
            exchange = exchanges[(number // len(areas)) % len(exchanges)]
            line = (number // (len(areas) * len(exchanges))) % 10_000
            style = number % 4
            if style == 0:
                phone = f"+1 {area} {exchange} {line:04d}"
            elif style == 1:
                phone = f"({area}) {exchange}-{line:04d}"
            elif style == 2:
                phone = f"1{area}{exchange}{line:04d}"
            else:
                phone = ""
            draw = rng.random()
            if draw < INVALID_SHARE:
                if number % 2:
                    email = rng.choice(BAD_EMAILS)
                else:
                    phone = rng.choice(BAD_PHONES)
            elif draw < INVALID_SHARE + DUPLICATE_SHARE and number > 0:
                # The email address of an earlier row, in other letter case.
                earlier = rng.randrange(number)
                email = f"PERSON.{earlier}@EXAMPLE{earlier % 97}.COM"
                phone = ""
            writer.writerow([name, email, phone, "imported for the benchmark"])


def require_loopback() -> None:
    from django.conf import settings
    from machine import is_loopback

    host = settings.DATABASES["default"].get("HOST")
    if not is_loopback(host):
        raise SystemExit(f"DATABASE_URL points at {host!r}, not a loopback address; refusing.")
    redis_host = urlsplit(settings.REDIS_URL).hostname
    if not is_loopback(redis_host):
        raise SystemExit(f"REDIS_URL points at {redis_host!r}, not a loopback address; refusing.")


def run_one(rows: int, processes: int | None) -> dict[str, Any]:
    """Generate, import and measure one file; runs in a child process of its own."""
    configure_environment()
    import django

    django.setup()
    from bench_workspace import bench_workspace
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, DeliveryAttempt, Recipient
    from imports.jobs import Counts, run_import
    from imports.models import RecipientImport

    require_loopback()
    if processes is not None:
        settings.IMPORT_PROCESSES = processes
    settings.IMPORT_MAX_ROWS = max(settings.IMPORT_MAX_ROWS, rows)
    folder = Path(tempfile.mkdtemp(prefix="import-bench-"))
    settings.IMPORT_FILES_DIR = folder
    stored_name = f"{uuid.uuid4().hex}.csv"
    path = folder / stored_name
    started = time.perf_counter()
    write_file(path, rows)
    generated = time.perf_counter() - started
    campaign = Campaign.objects.create(
        workspace=bench_workspace(), name=f"{CAMPAIGN_NAME_PREFIX}{os.getpid()}"
    )
    try:
        recipient_import = RecipientImport.objects.create(
            campaign=campaign,
            status=RecipientImport.Status.QUEUED,
            queued_at=timezone.now(),
            file_name=path.name,
            stored_name=stored_name,
            file_size=path.stat().st_size,
            encoding="utf-8",
            delimiter=",",
            column_titles=["Full name", "E-mail Address", "Mobile Phone", "Notes"],
            has_header=True,
            name_column=0,
            email_column=1,
            phone_column=2,
            phone_region="US",
        )
        staged_at: list[float] = []

        def on_progress(_import: RecipientImport, counts: Counts) -> None:
            staged_at.append(time.perf_counter())

        started = time.perf_counter()
        run_import(recipient_import.pk, on_progress=on_progress)
        finished = time.perf_counter()
        recipient_import.refresh_from_db()
        if recipient_import.status != RecipientImport.Status.COMPLETED:
            raise SystemExit(f"the import {recipient_import.status}: {recipient_import.error}")
        added = Recipient.objects.filter(campaign=campaign).count()
        return {
            "rows": rows,
            "file_mb": recipient_import.file_size / 1024 / 1024,
            "generate_s": generated,
            "stage_s": staged_at[-1] - started,
            "merge_s": finished - staged_at[-1],
            "total_s": finished - started,
            "added": recipient_import.rows_added,
            "added_counted": added,
            "duplicates": recipient_import.rows_duplicate,
            "invalid": recipient_import.rows_invalid,
            # Linux reports ru_maxrss in KiB.
            "rss_job_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "processes": settings.IMPORT_PROCESSES or os.cpu_count(),
        }
    finally:
        with connection.cursor() as cursor:
            # Raw deletes: the ORM would load a million recipients to cascade.
            cursor.execute(
                f"DELETE FROM {DeliveryAttempt._meta.db_table} WHERE campaign_id = %s",
                [campaign.pk],
            )
            cursor.execute(
                f"DELETE FROM {Recipient._meta.db_table} WHERE campaign_id = %s", [campaign.pk]
            )
        Campaign.objects.filter(pk=campaign.pk).delete()
        path.unlink(missing_ok=True)
        folder.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="Comma-separated row counts (default %(default)s).",
    )
    parser.add_argument(
        "--processes", type=int, help="Validation processes (default: IMPORT_PROCESSES)."
    )
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.run:
        print(json.dumps(run_one(options.run, options.processes)), flush=True)
        return 0

    configure_environment()
    from machine import cpu_model, load_average, memory_total_gib

    say(f"Machine: {os.cpu_count()} cores ({cpu_model()}), {memory_total_gib():.1f} GiB")
    say(f"Load average before: {load_average()}")
    sizes = [int(size) for size in options.sizes.split(",") if size.strip()]
    results = []
    for rows in sizes:
        command = [sys.executable, __file__, "--run", str(rows)]
        if options.processes is not None:
            command += ["--processes", str(options.processes)]
        say(f"Importing {rows:,} rows ...")
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            say(completed.stdout + completed.stderr)
            return 1
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        results.append(result)
        say(
            f"  {result['file_mb']:.0f} MB file; staged in {result['stage_s']:.1f} s, "
            f"final transaction {result['merge_s']:.1f} s, total {result['total_s']:.1f} s "
            f"= {rows / result['total_s']:,.0f} rows/s; added {result['added']:,}, "
            f"duplicates {result['duplicates']:,}, invalid {result['invalid']:,}; peak RSS "
            f"job {result['rss_job_mb']:.0f} MB, each worker process at most "
            f"{result['rss_workers_mb']:.0f} MB ({result['processes']} processes)"
        )
        if result["added"] != result["added_counted"]:
            say("  MISMATCH: the campaign holds a different number of recipients than reported")
            return 1
    say()
    say("rows       total s  rows/s    job RSS MB  worker RSS MB")
    for result in results:
        say(
            f"{result['rows']:<10,} {result['total_s']:>7.1f}  "
            f"{result['rows'] / result['total_s']:>8,.0f}  {result['rss_job_mb']:>10.0f}  "
            f"{result['rss_workers_mb']:>13.0f}"
        )
    for result in results:
        if result["rows"] == 1_000_000:
            verdict = "meets" if result["total_s"] < TARGET_SECONDS_PER_MILLION else "misses"
            say(
                f"1,000,000 rows in {result['total_s']:.1f} s {verdict} the target of "
                f"{TARGET_SECONDS_PER_MILLION:.0f} s."
            )
    say(f"Load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
