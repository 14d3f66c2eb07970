"""The CSV export of a campaign's recipients, streamed in chunks.

The app runs under uvicorn (ASGI). There Django consumes a synchronous
iterator of a StreamingHttpResponse whole before it sends anything, so the
view streams from an async generator, and a campaign of a million recipients
is never held in memory. Each chunk is one keyset-paginated query run in a
worker thread, which closes its database connection afterwards (see
`live.feeds.read_database`), so a slow download keeps no connection open.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from accounts.workspaces import workspace_campaigns
from campaigns.models import Campaign, Recipient
from live.feeds import read_database

# Recipients read per query.
EXPORT_CHUNK_SIZE = 2000

# Maximum length of the campaign-name part of the download's file name, in characters.
FILE_NAME_SLUG_MAX_LENGTH = 60

EXPORT_COLUMNS = (
    "name",
    "email",
    "phone",
    "status",
    "channel",
    "failure_reason",
    "attempts",
    "processed_at",
    "next_attempt_at",
    "claimed_at",
)

# The model fields behind EXPORT_COLUMNS, in the same order, after the id.
_FIELDS = (
    "id",
    "name",
    "email",
    "phone_number",
    "status",
    "channel",
    "failure_reason",
    "attempts",
    "processed_at",
    "next_attempt_at",
    "claimed_at",
)

# Spreadsheets run a cell that starts with one of these as a formula (or, for
# tab and carriage return, may drop the character and read what follows).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PHONE_NUMBER = re.compile(r"\+[0-9]+")

# Excel reads a CSV file without a byte order mark in the system's legacy
# code page, which garbles every non-ASCII name. With the mark, it reads UTF-8.
UTF8_BOM = "\ufeff"

type Row = tuple[
    int, str, str, str, str, str, str, int, datetime | None, datetime | None, datetime | None
]


def neutralize_formula(value: str) -> str:
    """Prefix `'` to a text cell that a spreadsheet would run as a formula."""
    return f"'{value}" if value.startswith(_FORMULA_PREFIXES) else value


def format_phone(value: str) -> str:
    """Keep a phone number such as +12025550101 as it is; neutralize anything else."""
    return value if _PHONE_NUMBER.fullmatch(value) else neutralize_formula(value)


def format_time(value: datetime | None) -> str:
    """Format a timestamp as ISO 8601 in UTC with milliseconds, or "" for none."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_name(campaign: Campaign) -> str:
    """Build the download's file name: an ASCII slug of the campaign's name and its id."""
    slug = slugify(campaign.name)[:FILE_NAME_SLUG_MAX_LENGTH].strip("-") or "campaign"
    return f"{slug}-{campaign.pk}-recipients.csv"


def read_chunk(campaign_id: int, after_id: int) -> list[Row]:
    """Read the next EXPORT_CHUNK_SIZE recipients with an id above `after_id`, in id order.

    Keyset pagination: each chunk is one range scan of the (campaign, id)
    index, so the last chunk costs what the first does.
    """
    rows = (
        Recipient.objects.filter(campaign_id=campaign_id, id__gt=after_id)
        .order_by("id")
        .values_list(*_FIELDS)[:EXPORT_CHUNK_SIZE]
    )
    return list(rows)


def format_rows(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for (
        _id,
        name,
        email,
        phone,
        status,
        channel,
        failure_reason,
        attempts,
        processed_at,
        next_attempt_at,
        claimed_at,
    ) in rows:
        writer.writerow(
            (
                neutralize_formula(name),
                neutralize_formula(email),
                format_phone(phone),
                status,
                channel,
                neutralize_formula(failure_reason),
                attempts,
                format_time(processed_at),
                format_time(next_attempt_at),
                format_time(claimed_at),
            )
        )
    return buffer.getvalue()


async def export_lines(campaign_id: int) -> AsyncIterator[str]:
    """Yield the CSV file: the byte order mark and header, then one string per chunk."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(EXPORT_COLUMNS)
    yield UTF8_BOM + header.getvalue()

    after_id = 0
    while True:
        rows = await read_database(read_chunk, campaign_id, after_id)
        if not rows:
            return
        yield format_rows(rows)
        if len(rows) < EXPORT_CHUNK_SIZE:
            return
        after_id = rows[-1][0]


@require_GET
async def export_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Stream every recipient of the campaign as CSV, in id order; 404 for an unknown one.

    Rows that change while the download runs appear as each chunk read them.
    """
    campaign = await read_database(workspace_campaigns(request).filter(pk=pk).first)
    if campaign is None:
        raise Http404("Campaign not found.")
    response = StreamingHttpResponse(
        export_lines(campaign.pk), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{file_name(campaign)}"'
    # The export is read whole each time; a cached copy would hide new outcomes.
    response["Cache-Control"] = "no-store"
    return response
