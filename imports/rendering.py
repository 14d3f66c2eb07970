"""The progress and report panel of an import, for pages and for live updates.

Pages include `imports/_progress.html`; the campaign's live feed
(live/feeds.py) sends the same partial as a Turbo Stream whenever the import
announces progress, so an update looks exactly like a reload.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.template.loader import render_to_string

from imports.models import ImportIssue, RecipientImport
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


def latest_import(campaign_id: int) -> RecipientImport | None:
    """Return the campaign's newest import, which its page shows, or None."""
    return RecipientImport.objects.filter(campaign_id=campaign_id).order_by("-created_at", "-id").first()
