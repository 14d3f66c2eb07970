"""The import report as CSV: the rows of a file that were not added, in line order.

The report page's download (imports/views.py) and `import_recipients
--report` write the same file: a UTF-8 byte-order mark, the header, and the
values with spreadsheet formulas neutralized.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q

from campaigns.export import UTF8_BOM, neutralize_formula
from imports.models import ImportIssue

COLUMNS = ("line", "kind", "name", "email", "phone", "reason")
# Report rows read from the database at once.
PAGE_ROWS = 2000


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


HEADER = UTF8_BOM + _csv_line(COLUMNS)


def read_page(import_id: int, after: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Read the next PAGE_ROWS report rows after the (line, id) position `after`.

    Keyset pagination on the report's (import, line) index, so a late page
    costs what the first does.
    """
    issues = ImportIssue.objects.filter(recipient_import_id=import_id)
    if after is not None:
        line, issue_id = after
        issues = issues.filter(Q(line__gt=line) | Q(line=line, id__gt=issue_id))
    return list(issues.order_by("line", "id").values("id", *COLUMNS)[:PAGE_ROWS])


def next_position(rows: list[dict[str, Any]]) -> tuple[int, int]:
    return rows[-1]["line"], rows[-1]["id"]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Format report rows as CSV lines."""
    return "".join(
        _csv_line(
            [
                row["line"],
                row["kind"],
                # Phone numbers such as "+44 7911 123456" get an apostrophe
                # too: they are shown as the file had them.
                *(neutralize_formula(row[column]) for column in COLUMNS[2:]),
            ]
        )
        for row in rows
    )


def iter_lines(import_id: int) -> Iterator[str]:
    """Yield the whole report as CSV text, page by page."""
    yield HEADER
    after = None
    while rows := read_page(import_id, after):
        yield format_rows(rows)
        after = next_position(rows)
