"""The progress and report panel of an import, for pages and for live updates.

Pages include `imports/_progress.html`. The campaign's live feed
(live/feeds.py) sends the same partial as a Turbo Stream whenever the import
announces progress, so an update looks exactly like a reload.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import Case, Value, When
from django.template.loader import render_to_string

from imports.models import ACTIVE_IMPORT_STATUSES, ImportIssue, RecipientImport
from live import broadcasts

# Report rows shown on the page; the CSV download has them all.
REPORT_ROWS_SHOWN = 20


def progress_context(recipient_import: RecipientImport) -> dict[str, Any]:
    """Build the partial's context: the import and, once completed, its first report rows."""
    issues: list[ImportIssue] = []
    if recipient_import.status == RecipientImport.Status.COMPLETED:
        issues = list(recipient_import.issues.order_by("line", "id")[:REPORT_ROWS_SHOWN])
    return {
        "recipient_import": recipient_import,
        "issues": issues,
        "report_rows_shown": REPORT_ROWS_SHOWN,
    }


def render_progress(recipient_import: RecipientImport) -> str:
    return render_to_string("imports/_progress.html", progress_context(recipient_import))


def progress_stream(recipient_import: RecipientImport) -> str:
    """Render the import's panel as a Turbo Stream that replaces it on the page."""
    return broadcasts.replace_stream(recipient_import.dom_id, render_progress(recipient_import))


def render_progress_streams(campaign_id: int, import_ids: Collection[int]) -> str:
    """Render the current panels of these imports of the campaign, with one query for them."""
    imports = RecipientImport.objects.filter(campaign_id=campaign_id, pk__in=list(import_ids))
    return "".join(progress_stream(recipient_import) for recipient_import in imports.order_by("id"))


def shown_import(campaign_id: int) -> RecipientImport | None:
    """Return the import that the campaign page shows, or None when it has none.

    That is the queued or running import when there is one, since dispatch
    waits for it, and otherwise the newest import. One query.
    """
    imports = RecipientImport.objects.filter(campaign_id=campaign_id).annotate(
        inactive=Case(When(status__in=ACTIVE_IMPORT_STATUSES, then=Value(0)), default=Value(1))
    )
    return imports.order_by("inactive", "-created_at", "-id").first()
