"""Celery tasks of the import. Messages carry only an import id, and the database has the rest."""

from __future__ import annotations

from celery import shared_task

from imports.jobs import run_import
from imports.sweep import sweep_imports


@shared_task(name="imports.run_import", ignore_result=True)
def run_import_task(import_id: int) -> None:
    run_import(import_id)


def run_import_later(import_id: int) -> None:
    """Enqueue the import's job; call it after the transaction that queued the import commits."""
    run_import_task.delay(import_id)


@shared_task(name="imports.sweep", ignore_result=True)
def sweep_task() -> None:
    sweep_imports()
