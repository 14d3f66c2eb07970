"""JSON log lines, chosen with LOG_FORMAT=json.

`JsonFormatter` writes one JSON object per record, with the fields that
docs/operations.md lists. It formats the message with the record's arguments
after the handler's filters have run, so the redaction filter of
suppressions/redaction.py rewrites what it writes, as it does in text mode.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ops.context import FIELDS

# uvicorn's access log passes these arguments, in this order, to the format
# '%s - "%s %s HTTP/%s" %d' (uvicorn.protocols.http in uvicorn 0.55.0, the locked version).
_ACCESS_LOG_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON: timestamp, level, logger, message and the known ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.name == "uvicorn.access":
            entry.update(_access_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, object]:
    args = record.args
    if not isinstance(args, tuple) or len(args) != len(_ACCESS_LOG_FIELDS):
        return {}
    return dict(zip(_ACCESS_LOG_FIELDS, args, strict=True))
