"""The import job: read a confirmed upload, validate its rows, add the good ones at once.

1. Claim the import (`queued → running`, one conditional UPDATE) and hold an
   advisory lock for it, which shows the sweep that a live job owns it.
2. Read the file record by record (imports/reader.py) and hand chunks of
   rows to worker processes, which validate them and COPY every row, valid
   or not, into an UNLOGGED staging table of this import. The staging table
   is outside the campaign, so a crash here leaves the campaign unchanged.
3. Lock the campaign's row and, only while the campaign is pending, do the
   rest in one transaction. Mark duplicates in SQL (within the file, then
   against the campaign's recipients), insert the remaining rows into the
   campaign, write the report and mark the import completed. Either all of
   it commits or none of it does.

Progress goes to the import's row about twice a second and from there to
open pages through the campaign's live-update stream.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from dispatch.locks import advisory_lock
from imports import reader, validation
from imports.models import ImportIssue, RecipientImport
from live import streams

logger = logging.getLogger(__name__)

# Second key namespace of the advisory locks that running imports hold.
IMPORT_LOCK_NAMESPACE = 0x0CD2

# Rows per chunk handed to a worker process: large enough that the hand-over
# costs little next to validation, small enough to keep memory flat.
CHUNK_ROWS = 4000
# Files smaller than this are validated in the job's own process: starting
# worker processes would cost more than it saves.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
PROGRESS_INTERVAL_SECONDS = 0.5
# Memory for sorts in the final transaction, per sort; a million staged rows
# sort in about 150 MB.
MERGE_WORK_MEM = "256MB"
# Raw values longer than this are cut in the report.
REPORT_VALUE_MAX_LENGTH = 500


class ImportStopped(Exception):
    """The import cannot go on, and nothing was added. `str(exc)` gives the reason for the user."""


@dataclass
class Counts:
    bytes_read: int = 0
    rows_read: int = 0
    valid: int = 0
    invalid: int = 0


ProgressCallback = Callable[[RecipientImport, Counts], None]


def staging_table(import_id: int) -> str:
    return f"import_rows_{import_id}"


def run_import(import_id: int, *, on_progress: ProgressCallback | None = None) -> bool:
    """Run a queued import to its end; returns whether this call ran it.

    Another job already running it, or an import that is no longer queued,
    makes this call return False without doing anything.
    """
    with advisory_lock(import_id, namespace=IMPORT_LOCK_NAMESPACE) as acquired:
        if not acquired:
            logger.info("import %s: another job is running it; skipping", import_id)
            return False
        recipient_import = RecipientImport.objects.filter(pk=import_id).first()
        if recipient_import is None or not recipient_import.transition(
            [RecipientImport.Status.QUEUED],
            RecipientImport.Status.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            error="",
            bytes_read=0,
            rows_read=0,
            rows_valid=0,
            rows_invalid=0,
        ):
            return False
        RecipientImport.objects.filter(pk=import_id).update(attempts=F("attempts") + 1)
        recipient_import.attempts += 1
        logger.info(
            "import %s: started for campaign %s (%s, %d bytes)",
            import_id,
            recipient_import.campaign_id,
            recipient_import.file_name,
            recipient_import.file_size,
        )
        _publish(recipient_import)
        try:
            _run(recipient_import, on_progress)
        except ImportStopped as exc:
            _fail(recipient_import, str(exc))
        except Exception:
            logger.exception("import %s: failed", import_id)
            _fail(
                recipient_import,
                "The import stopped because of an unexpected error, and nothing was added. "
                "The worker's log has the details; you can run the import again.",
            )
        finally:
            _drop_staging(import_id)
    return True


def _run(recipient_import: RecipientImport, on_progress: ProgressCallback | None) -> None:
    table = staging_table(recipient_import.pk)
    _create_staging(table)
    started = time.monotonic()
    counts = _stage_rows(recipient_import, table, on_progress)
    logger.info(
        "import %s: %d rows read and validated in %.1f s",
        recipient_import.pk,
        counts.rows_read,
        time.monotonic() - started,
    )
    _merge(recipient_import, table, counts)


def _create_staging(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        # UNLOGGED: no write-ahead log for rows that live minutes at most and
        # that a crash only needs to throw away.
        cursor.execute(
            f'CREATE UNLOGGED TABLE "{table}" ('
            "line integer NOT NULL, name text NOT NULL, email text NOT NULL, "
            "phone text NOT NULL, raw_name text, raw_email text, raw_phone text, reason text, "
            "duplicate boolean NOT NULL DEFAULT false)"
        )


def _drop_staging(import_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{staging_table(import_id)}"')
    except DatabaseError:
        # The sweep drops staging tables that outlive their import.
        logger.warning("import %s: staging table not dropped", import_id, exc_info=True)


def _stage_rows(
    recipient_import: RecipientImport, table: str, on_progress: ProgressCallback | None
) -> Counts:
    """Read the file and stage every data row; returns the counts."""
    try:
        file_format = reader.FileFormat(recipient_import.encoding, recipient_import.delimiter)
        records = reader.RecordReader(recipient_import.path, file_format)
    except FileNotFoundError:
        raise ImportStopped(
            "The uploaded file is no longer there (uploads are removed after "
            f"{settings.IMPORT_FILE_RETENTION_HOURS} hours). Upload it again."
        ) from None
    columns = validation.Columns(**recipient_import.mapping())
    region = recipient_import.phone_region
    counts = Counts()
    progress = _Progress(recipient_import, counts, on_progress)
    with records, _stager(table, region, recipient_import.file_size) as stage:
        chunk: list[validation.RawRow] = []
        skip_header = recipient_import.has_header
        try:
            for record in records:
                if skip_header:
                    skip_header = False
                    continue
                counts.rows_read += 1
                if counts.rows_read > settings.IMPORT_MAX_ROWS:
                    raise ImportStopped(
                        f"The file has more than {settings.IMPORT_MAX_ROWS:,} rows, the most "
                        "that one import takes. Split it into smaller files."
                    )
                chunk.append(columns.extract(record.line, record.cells))
                if len(chunk) >= CHUNK_ROWS:
                    stage.submit(chunk, counts)
                    chunk = []
                    counts.bytes_read = records.bytes_read
                    progress.report()
        except reader.UnreadableFile as exc:
            raise ImportStopped(str(exc)) from None
        if chunk:
            stage.submit(chunk, counts)
        stage.finish(counts)
    counts.bytes_read = records.size
    progress.report(force=True)
    return counts


class _InProcessStager:
    """Validates and stages chunks in this process, on the job's own connection."""

    def __init__(self, table: str, region: str) -> None:
        self.table = table
        self.region = region

    def submit(self, rows: list[validation.RawRow], counts: Counts) -> None:
        raw = connection.connection
        if raw is None:
            connection.ensure_connection()
            raw = connection.connection
        valid, invalid = validation.copy_rows(raw, self.table, self.region, rows)
        counts.valid += valid
        counts.invalid += invalid

    def finish(self, counts: Counts) -> None:
        return


class _ParallelStager:
    """Hands chunks to worker processes, at most two per process in flight.

    The bound keeps memory flat however large the file: reading waits for a
    worker when they fall behind.
    """

    def __init__(self, executor: ProcessPoolExecutor, processes: int, table: str, region: str):
        self.executor = executor
        self.limit = 2 * processes
        self.table = table
        self.region = region
        self.pending: set[Future[tuple[int, int]]] = set()

    def submit(self, rows: list[validation.RawRow], counts: Counts) -> None:
        while len(self.pending) >= self.limit:
            done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            self._collect(done, counts)
        self.pending.add(self.executor.submit(validation.copy_chunk, self.table, self.region, rows))

    def finish(self, counts: Counts) -> None:
        done, self.pending = wait(self.pending)
        self._collect(done, counts)

    @staticmethod
    def _collect(done: set[Future[tuple[int, int]]], counts: Counts) -> None:
        for future in done:
            valid, invalid = future.result()
            counts.valid += valid
            counts.invalid += invalid


@contextmanager
def _stager(table: str, region: str, file_size: int) -> Iterator[Any]:
    processes = settings.IMPORT_PROCESSES or os.cpu_count() or 1
    if processes < 2 or file_size < PARALLEL_MIN_BYTES:
        yield _InProcessStager(table, region)
        return
    # Worker processes are started fresh ("spawn"): the job runs in a
    # threaded Celery worker, and forking a process with threads can copy a
    # lock that another thread holds. Each opens its own connection.
    params = {**connection.get_connection_params()}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=get_context("spawn"),
        initializer=validation.start_worker,
        initargs=(params,),
    ) as executor:
        stager = _ParallelStager(executor, processes, table, region)
        try:
            yield stager
        except BaseException:
            for future in stager.pending:
                future.cancel()
            raise


class _Progress:
    """Writes the counts to the import's row and announces them, at most twice a second.

    The UPDATE's row count also shows whether the user cancelled the import meanwhile.
    """

    def __init__(
        self, recipient_import: RecipientImport, counts: Counts, callback: ProgressCallback | None
    ) -> None:
        self.recipient_import = recipient_import
        self.counts = counts
        self.callback = callback
        self.next_at = 0.0

    def report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_at:
            return
        self.next_at = now + PROGRESS_INTERVAL_SECONDS
        counts = self.counts
        updated = RecipientImport.objects.filter(
            pk=self.recipient_import.pk, status=RecipientImport.Status.RUNNING
        ).update(
            bytes_read=counts.bytes_read,
            rows_read=counts.rows_read,
            rows_valid=counts.valid,
            rows_invalid=counts.invalid,
        )
        if not updated:
            raise _Cancelled
        self.recipient_import.bytes_read = counts.bytes_read
        self.recipient_import.rows_read = counts.rows_read
        self.recipient_import.rows_valid = counts.valid
        self.recipient_import.rows_invalid = counts.invalid
        _publish(self.recipient_import)
        if self.callback is not None:
            self.callback(self.recipient_import, counts)


class _Cancelled(ImportStopped):
    """The import's status changed under the job: a user cancelled it."""


def _merge(recipient_import: RecipientImport, table: str, counts: Counts) -> None:
    """Add the staged rows to the campaign in one transaction, and complete the import."""
    campaign_id = recipient_import.campaign_id
    started = time.monotonic()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise ImportStopped("The campaign was deleted.")
        if not campaign.is_editable:
            raise ImportStopped(
                f"The campaign is {campaign.get_status_display().lower()}, so nothing was "
                "added: an import only adds recipients to a pending campaign."
            )
        # The import's own row too: a cancel that came meanwhile wins.
        still_running = (
            RecipientImport.objects.select_for_update()
            .filter(pk=recipient_import.pk, status=RecipientImport.Status.RUNNING)
            .exists()
        )
        if not still_running:
            raise _Cancelled
        with connection.cursor() as cursor:
            # The duplicate checks and the insert sort every staged row; with
            # PostgreSQL's default of 4 MB they would sort on disk.
            cursor.execute(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'")
            duplicates = _mark_duplicates(cursor, table, campaign_id)
            cursor.execute(_INSERT_RECIPIENTS.format(table=table), [campaign_id])
            added = cursor.rowcount
            cursor.execute(
                _INSERT_ISSUES.format(table=table),
                [recipient_import.pk, *[REPORT_VALUE_MAX_LENGTH] * 3],
            )
        recipient_import.transition(
            [RecipientImport.Status.RUNNING],
            RecipientImport.Status.COMPLETED,
            finished_at=timezone.now(),
            bytes_read=recipient_import.file_size,
            rows_read=counts.rows_read,
            rows_valid=counts.valid,
            rows_invalid=counts.invalid,
            rows_added=added,
            rows_duplicate=duplicates,
        )
    logger.info(
        "import %s: completed; %d rows read, %d added, %d invalid, %d duplicates; "
        "final transaction %.1f s",
        recipient_import.pk,
        counts.rows_read,
        added,
        counts.invalid,
        duplicates,
        time.monotonic() - started,
    )
    with suppress(FileNotFoundError):
        recipient_import.path.unlink()
    # The campaign's pages load again: new rows, counts and the report.
    streams.publish_refresh(campaign_id)


_RECIPIENTS = Recipient._meta.db_table
_ISSUES = ImportIssue._meta.db_table

# A valid row is a duplicate when an earlier valid row of the file has the
# same email address (compared fully lower-cased, as the campaign's unique
# index does) or the same phone number. The first row with a value wins.
_MARK_FILE_DUPLICATES = """
    UPDATE "{table}" AS s
       SET duplicate = true,
           reason = CASE WHEN d.first_email < d.line
                         THEN 'Duplicate: line ' || d.first_email || ' has the same email address.'
                         ELSE 'Duplicate: line ' || d.first_phone || ' has the same phone number.'
                    END
      FROM (SELECT line,
                   CASE WHEN email <> '' THEN min(line) OVER (PARTITION BY lower(email)) END
                       AS first_email,
                   CASE WHEN phone <> '' THEN min(line) OVER (PARTITION BY phone) END
                       AS first_phone
              FROM "{table}" WHERE reason IS NULL) AS d
     WHERE s.line = d.line AND (d.first_email < d.line OR d.first_phone < d.line)
"""

# Then the rows that a recipient of the campaign already has, by email
# address and then by phone number. Each is a join that the unique indexes
# on the recipients table serve.
_MARK_CAMPAIGN_EMAIL_DUPLICATES = f"""
    UPDATE "{{table}}" AS s
       SET duplicate = true,
           reason = 'Duplicate: a recipient of the campaign has this email address.'
      FROM {_RECIPIENTS} AS r
     WHERE s.reason IS NULL AND s.email <> ''
       AND r.campaign_id = %s AND r.email <> '' AND lower(r.email) = lower(s.email)
"""
_MARK_CAMPAIGN_PHONE_DUPLICATES = f"""
    UPDATE "{{table}}" AS s
       SET duplicate = true,
           reason = 'Duplicate: a recipient of the campaign has this phone number.'
      FROM {_RECIPIENTS} AS r
     WHERE s.reason IS NULL AND s.phone <> ''
       AND r.campaign_id = %s AND r.phone_number <> '' AND r.phone_number = s.phone
"""


def _mark_duplicates(cursor: Any, table: str, campaign_id: int) -> int:
    """Give every duplicate row its reason; returns how many there are."""
    cursor.execute(_MARK_FILE_DUPLICATES.format(table=table))
    duplicates = cursor.rowcount
    if Recipient.objects.filter(campaign_id=campaign_id).exists():
        for statement in (_MARK_CAMPAIGN_EMAIL_DUPLICATES, _MARK_CAMPAIGN_PHONE_DUPLICATES):
            cursor.execute(statement.format(table=table), [campaign_id])
            duplicates += cursor.rowcount
    return duplicates


# Every column without a database default is named. Rows keep the file's order.
_INSERT_RECIPIENTS = (
    f"INSERT INTO {_RECIPIENTS} (campaign_id, name, email, phone_number, status, "
    "failure_reason, attempts, attempt_base, last_error_transient, provider_message_id) "
    "SELECT %s, name, email, phone, 'queued', '', 0, 0, false, '' "
    'FROM "{table}" WHERE reason IS NULL ORDER BY line'
)

# Invalid rows carry their raw values; duplicates carry them where they
# differ from the cleaned ones.
_INSERT_ISSUES = (
    f"INSERT INTO {_ISSUES} (recipient_import_id, line, kind, name, email, phone, reason) "
    "SELECT %s, line, CASE WHEN duplicate THEN 'duplicate' ELSE 'invalid' END, "
    "left(coalesce(raw_name, name), %s), left(coalesce(raw_email, email), %s), "
    "left(coalesce(raw_phone, phone), %s), reason "
    'FROM "{table}" WHERE reason IS NOT NULL ORDER BY line'
)


def _fail(recipient_import: RecipientImport, message: str) -> None:
    """Record why the import ended without adding anything, unless a user cancelled it."""
    failed = recipient_import.transition(
        [RecipientImport.Status.RUNNING],
        RecipientImport.Status.FAILED,
        finished_at=timezone.now(),
        error=message,
    )
    if failed:
        logger.warning("import %s: failed: %s", recipient_import.pk, message)
    else:
        logger.info("import %s: stopped because it was cancelled", recipient_import.pk)
    _publish(recipient_import)


def _publish(recipient_import: RecipientImport) -> None:
    streams.publish_import(recipient_import.campaign_id, recipient_import.pk)
