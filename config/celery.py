"""The Celery application shared by the web process (which enqueues) and workers."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from suppressions.redaction import RedactUnsubscribeTokens

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_dispatcher")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_worker_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """Put the log filter of LOGGING's console handler on the handlers that Celery installs.

    A worker replaces the root logger's handlers with its own, which would
    otherwise print unsubscribe tokens (suppressions/redaction.py).
    """
    for handler in logger.handlers:
        if not any(isinstance(existing, RedactUnsubscribeTokens) for existing in handler.filters):
            handler.addFilter(RedactUnsubscribeTokens())
