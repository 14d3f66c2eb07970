"""Queues: control tasks and imports apart from worker loops, and the sweep's expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from config.celery import app as celery_app
from dispatch.tasks import dispatch_campaign_later, sweep_task, wake_campaign_later
from imports.tasks import run_import_later
from imports.tasks import sweep_task as import_sweep_task


def task_names(jobs: list[dict]) -> list[str]:
    return [job["headers"]["task"] for job in jobs]


def test_start_goes_to_control_queue(job_queue):
    dispatch_campaign_later(1)

    assert task_names(job_queue(settings.DISPATCH_CONTROL_QUEUE)) == ["dispatch.start_campaign"]
    assert job_queue(settings.CELERY_TASK_DEFAULT_QUEUE) == []


def test_sweep_goes_to_control_queue(job_queue):
    sweep_task.delay()

    assert task_names(job_queue(settings.DISPATCH_CONTROL_QUEUE)) == ["dispatch.sweep"]
    assert job_queue(settings.CELERY_TASK_DEFAULT_QUEUE) == []


def test_live_updates_use_no_queue():
    # Views and workers add live updates to the campaign's Redis stream
    # themselves; a task behind busy worker loops would deliver them late.
    celery_app.loader.import_default_modules()

    registered = {name for name in celery_app.tasks if not name.startswith("celery.")}
    assert registered == {
        "dispatch.start_campaign",
        "dispatch.process_campaign",
        "dispatch.sweep",
        "imports.run_import",
        "imports.sweep",
        "api.sweep_idempotency",
    }


def test_imports_go_to_the_import_queue(job_queue):
    run_import_later(7)
    import_sweep_task.delay()

    assert task_names(job_queue(settings.IMPORT_QUEUE)) == ["imports.run_import"]
    assert task_names(job_queue(settings.DISPATCH_CONTROL_QUEUE)) == ["imports.sweep"]


def test_loops_go_to_default_queue(job_queue):
    wake_campaign_later(1, workers=2)

    assert (
        task_names(job_queue(settings.CELERY_TASK_DEFAULT_QUEUE))
        == ["dispatch.process_campaign"] * 2
    )
    assert job_queue(settings.DISPATCH_CONTROL_QUEUE) == []


def test_queue_names_differ():
    queues = [
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.DISPATCH_CONTROL_QUEUE,
        settings.IMPORT_QUEUE,
    ]
    assert len(set(queues)) == 3


def test_worker_without_queues_consumes_all_three():
    # `celery worker` without -Q consumes every queue of task_queues.
    assert set(celery_app.amqp.queues) == {
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.DISPATCH_CONTROL_QUEUE,
        settings.IMPORT_QUEUE,
    }


def test_beat_sweep_expires_after_interval():
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["sweep"]

    assert entry["task"] == "dispatch.sweep"
    assert entry["schedule"] == settings.DISPATCH_SWEEP_INTERVAL_SECONDS
    assert entry["options"]["expires"] == settings.DISPATCH_SWEEP_INTERVAL_SECONDS


def test_beat_sweep_message_carries_expiry(job_queue):
    sent_at = datetime.now(UTC)
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["sweep"]
    sweep_task.apply_async(**entry["options"])

    [job] = job_queue(settings.DISPATCH_CONTROL_QUEUE)
    expires = datetime.fromisoformat(job["headers"]["expires"])
    interval = timedelta(seconds=settings.DISPATCH_SWEEP_INTERVAL_SECONDS)
    assert sent_at < expires <= datetime.now(UTC) + interval
