"""The import sweep: repairs what a dead job or a lost queue message left behind.

Celery beat runs it with the dispatch sweep's interval. A running import's job
holds the import's advisory lock for as long as it runs, and PostgreSQL drops
the lock when the job's connection dies, so an import that is `running`
while its lock is free has lost its job. The sweep queues it again (the job
starts from the file, and nothing of the first try reached the campaign), up
to IMPORT_MAX_ATTEMPTS tries.

It also removes what imports leave: files of ended imports, uploads never
confirmed, files and staging tables of imports that no longer exist.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from dispatch.locks import advisory_lock
from imports.jobs import IMPORT_LOCK_NAMESPACE, staging_table
from imports.models import RecipientImport

logger = logging.getLogger(__name__)

# Import ids start at 1, so key 0 of the import namespace is free for the sweep.
SWEEP_LOCK_KEY = 0
# Tries of one import before the sweep gives up on it.
IMPORT_MAX_ATTEMPTS = 3
# A queued import whose job has not started after this long gets a new
# message: the first one may have been lost with a Redis restart.
REQUEUE_AFTER = timedelta(minutes=1)
# A file in IMPORT_FILES_DIR that no import names is an upload cut short. It
# is removed once it is this old, so that an upload in progress is spared.
ORPHAN_FILE_AGE = timedelta(hours=1)


@dataclass
class ImportSweepResult:
    ran: bool = False
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    files_removed: int = 0
    tables_dropped: int = 0


def sweep_imports() -> ImportSweepResult:
    result = ImportSweepResult()
    with advisory_lock(SWEEP_LOCK_KEY, namespace=IMPORT_LOCK_NAMESPACE) as acquired:
        if not acquired:
            return result
        result.ran = True
        _recover_running(result)
        _resend_queued(result)
        _abandon_unconfirmed(result)
        _remove_files(result)
        _drop_staging_tables(result)
    if result.requeued or result.failed or result.abandoned:
        logger.info(
            "import sweep: requeued %s; failed %s; abandoned uploads %s",
            result.requeued,
            result.failed,
            result.abandoned,
        )
    return result


def _job_is_alive(import_id: int) -> bool:
    with advisory_lock(import_id, namespace=IMPORT_LOCK_NAMESPACE) as acquired:
        return not acquired


def _recover_running(result: ImportSweepResult) -> None:
    from imports.tasks import run_import_later

    for recipient_import in RecipientImport.objects.filter(status=RecipientImport.Status.RUNNING):
        if _job_is_alive(recipient_import.pk):
            continue
        if recipient_import.attempts >= IMPORT_MAX_ATTEMPTS:
            if recipient_import.transition(
                [RecipientImport.Status.RUNNING],
                RecipientImport.Status.FAILED,
                finished_at=timezone.now(),
                error=(
                    f"The import's job stopped {recipient_import.attempts} times before it "
                    "finished, and nothing was added. The workers' logs say why."
                ),
            ):
                result.failed.append(recipient_import.pk)
            continue
        if recipient_import.transition(
            [RecipientImport.Status.RUNNING],
            RecipientImport.Status.QUEUED,
            queued_at=timezone.now(),
        ):
            logger.warning(
                "import %s: its job stopped (attempt %d); queued again",
                recipient_import.pk,
                recipient_import.attempts,
            )
            run_import_later(recipient_import.pk)
            result.requeued.append(recipient_import.pk)


def _resend_queued(result: ImportSweepResult) -> None:
    from imports.tasks import run_import_later

    waiting = RecipientImport.objects.filter(
        status=RecipientImport.Status.QUEUED, queued_at__lt=timezone.now() - REQUEUE_AFTER
    )
    for import_id in waiting.values_list("pk", flat=True):
        # A second message is harmless: only one job claims the import.
        run_import_later(import_id)
        result.requeued.append(import_id)


def _abandon_unconfirmed(result: ImportSweepResult) -> None:
    cutoff = timezone.now() - timedelta(hours=settings.IMPORT_FILE_RETENTION_HOURS)
    for recipient_import in RecipientImport.objects.filter(
        status=RecipientImport.Status.MAPPING, created_at__lt=cutoff
    ):
        if recipient_import.transition(
            [RecipientImport.Status.MAPPING],
            RecipientImport.Status.CANCELLED,
            finished_at=timezone.now(),
            error="The column mapping was never confirmed, so the upload was discarded.",
        ):
            result.abandoned.append(recipient_import.pk)


def _remove_files(result: ImportSweepResult) -> None:
    """Remove every file that no import will read again."""
    folder = settings.IMPORT_FILES_DIR
    if not folder.is_dir():
        return
    cutoff = timezone.now() - timedelta(hours=settings.IMPORT_FILE_RETENTION_HOURS)
    # Files that an import may still read: not yet run, running, or failed
    # recently enough to run again.
    keep = set(
        RecipientImport.objects.filter(status__in=["mapping", "queued", "running"]).values_list(
            "stored_name", flat=True
        )
    ) | set(
        RecipientImport.objects.filter(
            status=RecipientImport.Status.FAILED, finished_at__gte=cutoff
        ).values_list("stored_name", flat=True)
    )
    known = set(RecipientImport.objects.values_list("stored_name", flat=True))
    orphan_before = time.time() - ORPHAN_FILE_AGE.total_seconds()
    for path in folder.iterdir():
        if not path.is_file() or path.name in keep:
            continue
        try:
            if path.name not in known and path.stat().st_mtime > orphan_before:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        result.files_removed += 1


def _drop_staging_tables(result: ImportSweepResult) -> None:
    """Drop staging tables whose import has no live job."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename LIKE 'import\\_rows\\_%%'"
        )
        tables = [row[0] for row in cursor.fetchall()]
    for table in tables:
        suffix = table.removeprefix("import_rows_")
        if not suffix.isdigit() or table != staging_table(int(suffix)):
            continue
        if _job_is_alive(int(suffix)):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        result.tables_dropped += 1
