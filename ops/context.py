"""Ids that log records carry while a request, a task or a delivery runs.

A context variable contains a mutable mapping of ids (request_id, workspace_id,
campaign_id, recipient_id, attempt, task_id). `bind()` adds ids for the
length of a `with` block, and `LogContextFilter` copies them onto each record
that a handler emits, where the JSON formatter (ops/logs.py) finds them.

The mapping is mutable on purpose: Django runs synchronous middleware and
views under ASGI in other threads, with a copy of the context, so an id added
there with `add()` reaches the request's later log records only because the
copy refers to the same mapping.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

# The names that records may carry, in the order the JSON formatter writes them.
FIELDS = (
    "request_id",
    "workspace_id",
    "campaign_id",
    "recipient_id",
    "attempt",
    "task_id",
    "task_name",
)

_current: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "log_context", default=None
)


def current() -> dict[str, object]:
    """Return a copy of the ids bound in this context."""
    return dict(_current.get() or {})


@contextmanager
def bind(**ids: object) -> Iterator[dict[str, object]]:
    """Bind `ids` for the block, on top of the ids already bound; yields the new mapping."""
    mapping = {**(_current.get() or {}), **ids}
    token = _current.set(mapping)
    try:
        yield mapping
    finally:
        _current.reset(token)


def push(**ids: object) -> contextvars.Token[dict[str, object] | None]:
    """Bind `ids` until `pop()` gets the returned token; for code that cannot use `bind()`."""
    return _current.set({**(_current.get() or {}), **ids})


def pop(token: contextvars.Token[dict[str, object] | None]) -> None:
    """Restore the ids bound before the `push()` that returned `token`."""
    _current.reset(token)


def add(**ids: object) -> None:
    """Add `ids` to the mapping bound by the innermost `bind()`; does nothing outside one."""
    mapping = _current.get()
    if mapping is not None:
        mapping.update(ids)


class LogContextFilter(logging.Filter):
    """Copy the bound ids onto each record, unless the record already has that attribute.

    A record gets ids from `logger.info(..., extra={"campaign_id": 7})` too, and
    those win over the bound ones. Django logs 4xx and 5xx responses
    (django.request) after the middleware has returned, with the request in
    `record.request`, so its request and workspace ids are read from there.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        mapping = _current.get()
        if mapping:
            for name, value in mapping.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        request = getattr(record, "request", None)
        if request is not None:
            if not hasattr(record, "request_id"):
                request_id = getattr(request, "request_id", None)
                if request_id is not None:
                    record.request_id = request_id
            workspace = getattr(request, "workspace", None)
            if workspace is not None and not hasattr(record, "workspace_id"):
                record.workspace_id = workspace.pk
        return True
