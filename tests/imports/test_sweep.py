"""The import sweep: imports whose job died, lost messages, abandoned uploads and leftovers."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from imports.jobs import IMPORT_LOCK_NAMESPACE, run_import, staging_table
from imports.models import RecipientImport
from imports.sweep import IMPORT_MAX_ATTEMPTS, sweep_imports
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

CSV = "name,email,phone\nAda,ada@example.com,\n"


def decoded_args(job_queue: Any) -> list[int]:
    import base64
    import json

    from django.conf import settings

    ids = []
    for job in job_queue(settings.IMPORT_QUEUE):
        body = json.loads(base64.b64decode(job["body"]))
        ids.append(body[0][0])
    return ids


def test_sweep_requeues_dead_job(queued_import: Any, job_queue: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, CSV, status=RecipientImport.Status.RUNNING)
    RecipientImport.objects.filter(pk=recipient_import.pk).update(attempts=1)

    result = sweep_imports()

    assert result.requeued == [recipient_import.pk]
    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.QUEUED
    assert decoded_args(job_queue) == [recipient_import.pk]
    # The job that the message starts runs the import from its file.
    assert run_import(recipient_import.pk) is True
    assert campaign.recipients.count() == 1


def test_sweep_spares_live_job(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, CSV, status=RecipientImport.Status.RUNNING)

    # This connection stands for the live job: the sweep's own check takes
    # the lock on the same connection, so the test holds it from another one.
    import psycopg

    params = {**connection.get_connection_params()}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [IMPORT_LOCK_NAMESPACE, recipient_import.pk]
        )
        result = sweep_imports()

    assert result.requeued == []
    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.RUNNING


def test_sweep_fails_after_max_attempts(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, CSV, status=RecipientImport.Status.RUNNING)
    RecipientImport.objects.filter(pk=recipient_import.pk).update(attempts=IMPORT_MAX_ATTEMPTS)

    result = sweep_imports()

    assert result.failed == [recipient_import.pk]
    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert f"stopped {IMPORT_MAX_ATTEMPTS} times" in recipient_import.error


def test_sweep_resends_stale_queued_import(queued_import: Any, job_queue: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    waiting = queued_import(campaign, CSV)
    RecipientImport.objects.filter(pk=waiting.pk).update(
        queued_at=timezone.now() - timedelta(minutes=5)
    )
    recent = queued_import(
        Campaign.objects.create(workspace=operator_workspace(), name="Other"), CSV
    )

    result = sweep_imports()

    assert result.requeued == [waiting.pk]
    assert decoded_args(job_queue) == [waiting.pk]
    assert recent.pk not in result.requeued


def test_sweep_discards_unconfirmed_upload(queued_import: Any, settings: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    old = queued_import(campaign, CSV, status=RecipientImport.Status.MAPPING)
    RecipientImport.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=settings.IMPORT_FILE_RETENTION_HOURS + 1)
    )
    fresh = queued_import(campaign, CSV, status=RecipientImport.Status.MAPPING)

    result = sweep_imports()

    assert result.abandoned == [old.pk]
    old.refresh_from_db()
    assert old.status == RecipientImport.Status.CANCELLED
    assert not old.path.exists()
    assert fresh.path.exists()


def test_sweep_removes_unneeded_files(
    queued_import: Any, import_files_dir: Path, settings: Any
) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    completed = queued_import(campaign, CSV, status=RecipientImport.Status.COMPLETED)
    failed_recently = queued_import(campaign, CSV, status=RecipientImport.Status.FAILED)
    RecipientImport.objects.filter(pk=failed_recently.pk).update(finished_at=timezone.now())
    failed_long_ago = queued_import(campaign, CSV, status=RecipientImport.Status.FAILED)
    RecipientImport.objects.filter(pk=failed_long_ago.pk).update(
        finished_at=timezone.now() - timedelta(hours=settings.IMPORT_FILE_RETENTION_HOURS + 1)
    )
    old_orphan = import_files_dir / "cut-short.csv"
    old_orphan.write_text(CSV)
    two_hours_ago = time.time() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    # An upload still being written has no import row yet.
    new_orphan = import_files_dir / "arriving.csv"
    new_orphan.write_text(CSV)

    result = sweep_imports()

    assert result.files_removed == 3
    assert not completed.path.exists()
    assert failed_recently.path.exists()
    assert not failed_long_ago.path.exists()
    assert not old_orphan.exists()
    assert new_orphan.exists()


def test_sweep_drops_orphan_staging_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{staging_table(987654)}" (line integer)')

    result = sweep_imports()

    assert result.tables_dropped == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [staging_table(987654)])
        assert cursor.fetchone() == (None,)
