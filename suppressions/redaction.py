"""Keep unsubscribe tokens and signed stream access out of the logs.

A token in `/u/<token>` unsubscribes its recipient, and it carries the
recipient's address in signed but readable form. The `access` query
parameter of a campaign's event stream (live/access.py) opens the stream
without a session until it expires. Request paths reach the logs
through uvicorn's access log, Django's development server and Django's
`django.request` warnings for 4xx and 5xx responses, so every path is logged
with the token, and the value of `access`, replaced by `[redacted]`.

The LOGGING setting puts the filter on the console handler that the app's
loggers and Django's loggers write to. uvicorn and the development server
print through handlers of their own, so `install()` puts the filter on their
loggers. The app config calls it when Django starts, which under uvicorn is
after uvicorn has configured its logging.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# The unsubscribe paths of suppressions/urls.py, /u/<token> and
# /u/<token>/one-click, in a path or a full URL. A token is URL-safe base64
# with ":" separators, which a log may show percent-encoded as %3A.
_TOKEN_IN_PATH = re.compile(r"(/u/)[A-Za-z0-9_:%-]+")
# The signed `access` parameter of a stream URL, in a query string, which a
# log may show with the "?" or "&" percent-encoded.
_STREAM_ACCESS = re.compile(r"((?:[?&]|%3F|%26)access(?:=|%3D))[^&\s\"']+", re.IGNORECASE)

# Loggers whose records go to handlers that LOGGING does not configure.
# uvicorn.access and django.server print every request line, and
# uvicorn.error reports invalid requests. django.request and
# django.security.csrf name the path of each 4xx and 5xx response, which
# Django's own DEBUG console handler prints too.
LOGGERS_WITH_PATHS = (
    "uvicorn.access",
    "uvicorn.error",
    "django.server",
    "django.request",
    "django.security.csrf",
)

# Argument types that a filter can redact in place without changing how the
# record formats: uvicorn's access formatter unpacks the arguments by position.
_PLAIN_ARGUMENTS = (str, int, float)


def redact(text: str) -> str:
    """Replace every unsubscribe token and stream access value in `text` with [redacted]."""
    text = _TOKEN_IN_PATH.sub(rf"\g<1>{REDACTED}", text)
    return _STREAM_ACCESS.sub(rf"\g<1>{REDACTED}", text)


class RedactUnsubscribeTokens(logging.Filter):
    """Rewrite a log record so that its message and traceback contain no unsubscribe token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and all(isinstance(arg, _PLAIN_ARGUMENTS) for arg in args):
            # Keeps the arguments' positions, which uvicorn's access formatter reads.
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)
        else:
            # Arguments such as exceptions or mappings are formatted here,
            # because their str() or repr() may contain a path.
            message = record.getMessage()
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text instead of formatting the traceback again.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """Add the filter to each logger in LOGGERS_WITH_PATHS, once per process."""
    for name in LOGGERS_WITH_PATHS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactUnsubscribeTokens) for existing in logger.filters):
            logger.addFilter(RedactUnsubscribeTokens())
