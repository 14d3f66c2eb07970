"""Pages of a recipient import: upload, column mapping, progress, report and its download."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.workspaces import current_workspace, get_campaign
from audit.models import Action, record
from campaigns.models import Campaign
from campaigns.views import see_other
from imports import reader, uploads
from imports import report as report_csv
from imports.forms import ImportFileForm, MappingForm, column_count, column_letter
from imports.models import RecipientImport
from imports.rendering import progress_context
from imports.tasks import run_import_later
from live import streams
from live.feeds import read_database

logger = logging.getLogger(__name__)


_ACTIVE_IMPORT_MESSAGE = (
    "Another import into this campaign is queued or running. Wait until it has "
    "finished, then start this one."
)


def _not_pending_message(campaign: Campaign | None) -> str:
    if campaign is None:
        return "This campaign was deleted."
    status = campaign.get_status_display().lower()
    return (
        f"This campaign is {status}, so nothing can be imported into it: an import only "
        "adds recipients to a pending campaign."
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a CSV file into a pending campaign, then go to its mapping page.

    CSRF is checked by `_upload`, after the upload handler is in place.
    """
    if request.method == "POST":
        receiver = uploads.receive_file(request)
        try:
            return _upload(request, pk, receiver)
        finally:
            receiver.discard()
    return _new_page(request, pk)


@csrf_protect
def _new_page(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    if not campaign.is_editable:
        messages.error(request, _not_pending_message(campaign))
        return see_other(campaign.get_absolute_url())
    return _render_new(request, campaign)


@csrf_protect
def _upload(request: HttpRequest, pk: int, receiver: uploads.FileReceiver) -> HttpResponse:
    campaign = get_campaign(request, pk)
    if not campaign.is_editable:
        messages.error(request, _not_pending_message(campaign))
        return see_other(campaign.get_absolute_url())
    form = ImportFileForm(request.POST, request.FILES, receiver=receiver)
    if not form.is_valid():
        logger.info("campaign %s: import upload rejected: %s", pk, form.errors.as_text())
        return _render_new(request, campaign, form, status=422)

    upload = form.cleaned_data["file"]
    assert form.file_format is not None and form.preview is not None
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=pk).first()
        if locked is None or not locked.is_editable:
            messages.error(request, _not_pending_message(locked))
            return see_other(campaign.get_absolute_url())
        recipient_import = uploads.create_import(locked, upload, form.file_format, form.preview)
    form.keep_file()
    return see_other(recipient_import.get_absolute_url())


def _render_new(
    request: HttpRequest, campaign: Campaign, form: ImportFileForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "campaign": campaign,
        "form": form or ImportFileForm(),
        "max_megabytes": settings.IMPORT_MAX_FILE_MEGABYTES,
    }
    return render(request, "imports/new.html", context, status=status)


def _get_import(request: HttpRequest, pk: int, import_id: int) -> RecipientImport:
    """Return the import `import_id` of campaign `pk`, in the request's workspace, or 404."""
    return get_object_or_404(
        RecipientImport.objects.select_related("campaign"),
        pk=import_id,
        campaign_id=pk,
        campaign__workspace_id=current_workspace(request).pk,
    )


@require_GET
def detail(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    """Show the mapping form while the import waits for it, and its progress and report after."""
    # The stream position before the database, as on the campaign page.
    stream_position = streams.current_position(pk)
    recipient_import = _get_import(request, pk, import_id)
    if (
        recipient_import.status == RecipientImport.Status.MAPPING
        and recipient_import.campaign.is_editable
    ):
        form = MappingForm(recipient_import=recipient_import)
        return _render_mapping(request, recipient_import, form)

    stream_query = {"after": stream_position} if stream_position is not None else {}
    stream_url = reverse("live:campaign_stream", args=[pk])
    context = {
        **progress_context(recipient_import),
        "campaign": recipient_import.campaign,
        "stream_url": f"{stream_url}?{urlencode(stream_query)}" if stream_query else stream_url,
    }
    return render(request, "imports/detail.html", context)


def _render_mapping(
    request: HttpRequest, recipient_import: RecipientImport, form: MappingForm, status: int = 200
) -> HttpResponse:
    context = {
        "campaign": recipient_import.campaign,
        "recipient_import": recipient_import,
        "form": form,
        "file_format": reader.FileFormat(recipient_import.encoding, recipient_import.delimiter),
        "column_titles": _column_titles(recipient_import),
    }
    return render(request, "imports/mapping.html", context, status=status)


def _column_titles(recipient_import: RecipientImport) -> list[tuple[str, str]]:
    """(letter, title) of every column, for the head of the sample table."""
    titles = recipient_import.column_titles
    return [
        (column_letter(index), titles[index] if index < len(titles) else "")
        for index in range(column_count(recipient_import))
    ]


@require_POST
def confirm(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    recipient_import = _get_import(request, pk, import_id)
    if recipient_import.status == RecipientImport.Status.CANCELLED:
        messages.error(request, recipient_import.error or "This upload was discarded.")
        return see_other(recipient_import.get_absolute_url())
    if recipient_import.status != RecipientImport.Status.MAPPING:
        messages.info(request, "This import's columns were already confirmed.")
        return see_other(recipient_import.get_absolute_url())
    form = MappingForm(request.POST, recipient_import=recipient_import)
    if not form.is_valid():
        return _render_mapping(request, recipient_import, form, status=422)

    error = _queue(
        request,
        recipient_import,
        RecipientImport.Status.MAPPING,
        audit_detail=f"“{recipient_import.file_name}”",
        not_queued="This import was discarded or already confirmed.",
        **form.mapping_fields(),
    )
    if error is not None:
        messages.error(request, error)
        return see_other(recipient_import.get_absolute_url())
    logger.info("campaign %s: import %s queued", pk, recipient_import.pk)
    messages.success(request, f"Importing “{recipient_import.file_name}”. Progress shows below.")
    return see_other(recipient_import.get_absolute_url())


@require_POST
def discard(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    recipient_import = _get_import(request, pk, import_id)
    with transaction.atomic():
        discarded = recipient_import.transition(
            [RecipientImport.Status.MAPPING],
            RecipientImport.Status.CANCELLED,
            finished_at=timezone.now(),
        )
        if discarded:
            record(
                recipient_import.campaign,
                Action.IMPORT_DISCARDED,
                request.user,
                f"“{recipient_import.file_name}”",
            )
    if not discarded:
        messages.error(
            request, "Only an upload that waits for its column mapping can be discarded."
        )
        return see_other(recipient_import.get_absolute_url())
    _delete_file(recipient_import)
    logger.info("campaign %s: import %s discarded", pk, recipient_import.pk)
    messages.success(request, f"Upload “{recipient_import.file_name}” discarded.")
    return see_other(recipient_import.campaign.get_absolute_url())


@require_POST
def cancel(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    recipient_import = _get_import(request, pk, import_id)
    with transaction.atomic():
        cancelled = recipient_import.transition(
            [RecipientImport.Status.QUEUED, RecipientImport.Status.RUNNING],
            RecipientImport.Status.CANCELLED,
            finished_at=timezone.now(),
        )
        if cancelled:
            record(
                recipient_import.campaign,
                Action.IMPORT_CANCELLED,
                request.user,
                f"“{recipient_import.file_name}”",
            )
            transaction.on_commit(partial(streams.publish_import, pk, recipient_import.pk))
    if not cancelled:
        # The UPDATE may have waited for the job's final transaction, so the
        # status is read again.
        recipient_import.refresh_from_db(fields=["status"])
        if recipient_import.status == RecipientImport.Status.COMPLETED:
            message = "The import had already finished adding its rows, so it was not cancelled."
        else:
            message = (
                "Only a queued or running import can be cancelled; this one is "
                f"{recipient_import.get_status_display().lower()}."
            )
        messages.error(request, message)
        return see_other(recipient_import.get_absolute_url())
    # A running job stops at its next progress update or before it adds
    # anything, so the file is no longer needed. A job that has it open can
    # still read it.
    _delete_file(recipient_import)
    logger.info("campaign %s: import %s cancelled by a user", pk, recipient_import.pk)
    messages.success(request, "Import cancelled. No recipient was added.")
    return see_other(recipient_import.get_absolute_url())


@require_POST
def run_again(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    recipient_import = _get_import(request, pk, import_id)
    if recipient_import.status != RecipientImport.Status.FAILED:
        messages.error(request, "Only a failed import can be run again.")
        return see_other(recipient_import.get_absolute_url())
    if not recipient_import.path.exists():
        messages.error(
            request,
            "The uploaded file is no longer there, so the import cannot run again. "
            "Upload the file again.",
        )
        return see_other(recipient_import.get_absolute_url())

    error = _queue(
        request,
        recipient_import,
        RecipientImport.Status.FAILED,
        audit_detail=f"“{recipient_import.file_name}”, run again after it failed",
        not_queued="Only a failed import can be run again.",
        error="",
        finished_at=None,
        # A run the user starts gets the sweep's full number of tries.
        attempts=0,
    )
    if error is not None:
        messages.error(request, error)
        return see_other(recipient_import.get_absolute_url())
    logger.info("campaign %s: import %s queued again", pk, recipient_import.pk)
    messages.success(request, "Import queued again.")
    return see_other(recipient_import.get_absolute_url())


def _queue(
    request: HttpRequest,
    recipient_import: RecipientImport,
    source: str,
    *,
    audit_detail: str,
    not_queued: str,
    **fields: Any,
) -> str | None:
    """Queue the import from `source` and enqueue its job; returns an error message, or None.

    The audit trail gets an IMPORT_CONFIRMED event with `audit_detail`.

    The campaign's row lock orders this against a dispatch, which would make
    the campaign read-only. The job checks the status again before it adds
    rows.
    """
    campaign_id = recipient_import.campaign_id
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or not campaign.is_editable:
            return _not_pending_message(campaign)
        try:
            with transaction.atomic():
                queued = recipient_import.transition(
                    [source], RecipientImport.Status.QUEUED, queued_at=timezone.now(), **fields
                )
        except IntegrityError:
            # The constraint allows one queued or running import per campaign.
            return _ACTIVE_IMPORT_MESSAGE
        if not queued:
            return not_queued
        record(campaign, Action.IMPORT_CONFIRMED, request.user, audit_detail)
        transaction.on_commit(partial(run_import_later, recipient_import.pk))
        transaction.on_commit(partial(streams.publish_import, campaign_id, recipient_import.pk))
    return None


def _delete_file(recipient_import: RecipientImport) -> None:
    with suppress(FileNotFoundError):
        recipient_import.path.unlink()


@require_GET
async def report(request: HttpRequest, pk: int, import_id: int) -> StreamingHttpResponse:
    """Stream every report row of the import as CSV, in line order."""
    recipient_import = await RecipientImport.objects.filter(
        pk=import_id, campaign_id=pk, campaign__workspace_id=current_workspace(request).pk
    ).afirst()
    if recipient_import is None:
        raise Http404("Import not found.")
    stem = recipient_import.file_name.rsplit(".", 1)[0] or "import"
    file_name = f"{_safe_file_name(stem)}-report.csv"
    response = StreamingHttpResponse(
        _report_lines(import_id), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


def _safe_file_name(stem: str) -> str:
    """Keep letters, digits, dots, dashes and underscores, for the Content-Disposition header."""
    kept = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in stem)
    return kept[:100] or "import"


async def _report_lines(import_id: int) -> AsyncIterator[str]:
    """Yield the report as CSV text, one page of rows at a time.

    Each read runs in a thread and gives its connection back, as the live
    feeds' reads do.
    """
    yield report_csv.HEADER
    after: tuple[int, int] | None = None
    while True:
        rows = await read_database(report_csv.read_page, import_id, after)
        if not rows:
            return
        yield report_csv.format_rows(rows)
        after = report_csv.next_position(rows)
