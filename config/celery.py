"""The Celery application shared by the web process (which enqueues) and workers."""

import contextvars
import logging
import os
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_shutting_down,
)

from suppressions.redaction import RedactUnsubscribeTokens

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_dispatcher")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_shutting_down.connect
def stop_worker_loops(**kwargs: Any) -> None:
    """Make this process's worker loops return their claims and finish (dispatch/shutdown.py).

    Without this, a warm shutdown would wait until every running campaign
    had nothing left to deliver.
    """
    from dispatch import shutdown

    shutdown.request_stop()


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_worker_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """Put the log filter of LOGGING's console handler on the handlers that Celery installs.

    A worker replaces the root logger's handlers with its own, which would
    otherwise print unsubscribe tokens (suppressions/redaction.py).
    """
    from django.conf import settings

    from ops.apps import use_json_format

    for handler in logger.handlers:
        if not any(isinstance(existing, RedactUnsubscribeTokens) for existing in handler.filters):
            handler.addFilter(RedactUnsubscribeTokens())
    if settings.LOG_FORMAT == "json":
        use_json_format(logger.handlers)


# The log context of each running task, by task id: prerun and postrun run in
# the task's thread, one pair per task.
_task_log_contexts: dict[str, contextvars.Token[Any]] = {}


@task_prerun.connect
def bind_task_ids(task_id: str, task: Any, **kwargs: Any) -> None:
    """Bind the task's id and name to the log records that the task writes."""
    from ops import context

    _task_log_contexts[task_id] = context.push(task_id=task_id, task_name=task.name)


@task_postrun.connect
def unbind_task_ids(task_id: str, **kwargs: Any) -> None:
    from ops import context

    token = _task_log_contexts.pop(task_id, None)
    if token is not None:
        context.pop(token)


@worker_process_shutdown.connect
def forget_worker_process_gauges(pid: int, **kwargs: Any) -> None:
    """Remove the live-gauge files of a prefork child that exits (multiprocess metrics)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)
