"""Opaque cursors for keyset pagination on ids.

A cursor is the URL-safe base64 of "<kind>:<id>", the last id of the
previous page. The kind names the list (campaigns, or one campaign's
recipients with one status filter), so a cursor works only on its own
list. Rows inserted meanwhile never shift the pages that follow, because
each page starts after an id rather than at an offset.
"""

from __future__ import annotations

import base64
import binascii

from api.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """Return the id after which the page starts, or None for the first page.

    Raises ApiError (422 invalid_cursor) for a cursor that this API did not
    return for this list.
    """
    if not cursor:
        return None
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    prefix, _, digits = text.rpartition(":")
    if prefix != kind or not digits.isdigit() or len(digits) > 18:
        raise ApiError(
            422,
            "invalid_cursor",
            "The cursor is not one that this list returned. Start again without a cursor.",
        )
    return int(digits)
