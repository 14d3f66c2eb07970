import atexit
import logging
import os

from django.apps import AppConfig
from django.conf import settings

# uvicorn configures these loggers with handlers of its own before Django starts.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Health, metrics and logs"

    def ready(self) -> None:
        if settings.LOG_FORMAT == "json":
            for name in UVICORN_LOGGERS:
                use_json_format(logging.getLogger(name).handlers)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            atexit.register(_mark_this_process_dead)


def use_json_format(handlers: list[logging.Handler]) -> None:
    """Give each handler the JSON formatter and the filter that adds the bound ids."""
    from ops.context import LogContextFilter
    from ops.logs import JsonFormatter

    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(existing, LogContextFilter) for existing in handler.filters):
            handler.addFilter(LogContextFilter())


def _mark_this_process_dead() -> None:
    # os.getpid() at exit, not at startup: a forked child inherits this hook.
    from prometheus_client import multiprocess

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(os.getpid(), path)
