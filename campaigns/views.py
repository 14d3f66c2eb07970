"""Pages for listing, creating, editing, deleting and dispatching campaigns."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.workspaces import current_workspace, get_campaign, workspace_campaigns
from audit.models import Action, record
from audit.views import latest_events
from campaigns import actions
from campaigns.forms import CampaignForm, RecipientFilterForm, RecipientFormSet
from campaigns.models import Campaign, Recipient
from campaigns.pagination import RecipientPaginator
from dispatch.tasks import dispatch_campaign_later
from imports import uploads
from imports.forms import ImportFileForm
from imports.rendering import progress_context, shown_import
from live import streams
from live.broadcasts import broadcast_refresh, header_context, turbo_request_id

logger = logging.getLogger(__name__)

CAMPAIGNS_PER_PAGE = 20
RECIPIENTS_PER_PAGE = 50
# Posted by the edit form of a campaign whose recipients are edited in its table.
RECIPIENTS_IN_TABLE = "recipients_in_table"

_READ_ONLY_MESSAGE = "This campaign was already dispatched; it is read-only."
_CANCELLED_MESSAGE = "This campaign was cancelled, so it can no longer be edited or deleted."
# Shown when the database rejects a save that passed validation: another
# request saved the same email or phone number first, or two saved rows
# swapped values, which the unique indexes reject row by row.
_CONFLICT_MESSAGE = (
    "The recipients could not be saved because two of them would share an email "
    "address or phone number, perhaps after another change saved at the same time. "
    "To swap values between rows, save the change in two steps."
)


def see_other(url: str) -> HttpResponseRedirect:
    """Redirect with 303, which Turbo expects after a form submission."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    campaigns = workspace_campaigns(request, Campaign.objects.with_progress()).order_by(
        "-created_at", "-id"
    )
    page = Paginator(campaigns, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    # The stream sends these campaigns' current rows when it connects, so the
    # page needs no stream position.
    stream_query = urlencode({"ids": ",".join(str(c.pk) for c in page.object_list)}, safe=",")
    context = {"page": page, "stream_url": f"{reverse('live:index_stream')}?{stream_query}"}
    return render(request, "campaigns/index.html", context)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    # The stream position first, the database second: the page's live stream
    # starts after this entry, so it delivers every change that the reads
    # below miss.
    stream_position = streams.current_position(pk)
    campaign = get_campaign(request, pk, Campaign.objects.with_progress())
    # The header uses the import panel's query to show whether dispatch waits.
    shown = shown_import(pk)
    header = header_context(campaign, active_import=shown if shown and shown.is_active else None)
    filter_form = RecipientFilterForm(request.GET)
    count = None
    if filter_form.is_valid():
        recipients = filter_form.filter(campaign.recipients.order_by("id"))
        if not filter_form.cleaned_data["q"]:
            # The header's status counts already say how many rows match, so
            # the paginator need not count them. A search still counts, and
            # reads every row of the campaign, because no index serves a
            # substring match.
            count = header["progress"].of(filter_form.cleaned_data["status"])
        status = 200
    else:
        # An unknown status or a too-long search lists nothing rather than a
        # guess, and the form shows the error next to the field.
        recipients = campaign.recipients.none()
        status = 400
        logger.info("campaign %s: recipient filter rejected: %s", pk, filter_form.errors.as_text())
    # Pages in the second half are read from the end of the list, so the
    # last page costs what the first does (see RecipientPaginator).
    paginator = RecipientPaginator(recipients, RECIPIENTS_PER_PAGE, count=count)
    page = paginator.get_page(request.GET.get("page"))
    stream_query = {"ids": ",".join(str(r.pk) for r in page.object_list)}
    if stream_position is not None:
        stream_query["after"] = stream_position
    stream_url = reverse("live:campaign_stream", args=[pk])
    audit_events, more_audit_events = latest_events(campaign)
    context = {
        **header,
        "audit_events": audit_events,
        "more_audit_events": more_audit_events,
        "shown_import": shown,
        "shown_import_issues": progress_context(shown)["issues"] if shown else [],
        "filter_form": filter_form,
        "is_filtered": bool(request.GET.get("status") or request.GET.get("q")),
        "page": page,
        "stream_url": f"{stream_url}?{urlencode(stream_query, safe=',')}",
        # The recipient pages return to this URL, with its page and filter.
        "return_to": request.get_full_path(),
    }
    return render(request, "campaigns/detail.html", context, status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    """Create a campaign from typed rows, a CSV file, or both.

    A file goes to IMPORT_FILES_DIR as it arrives, so its upload handler is
    installed before anything reads the POST data. The CSRF check runs
    after that, in `_create`.
    """
    if request.method == "GET":
        return _create(request, receiver=None)
    receiver = uploads.receive_file(request)
    try:
        return _create(request, receiver)
    finally:
        receiver.discard()


@csrf_protect
def _create(request: HttpRequest, receiver: uploads.FileReceiver | None) -> HttpResponse:
    if receiver is None:
        campaign = Campaign(workspace=current_workspace(request))
        return _render_form(
            request, CampaignForm(), RecipientFormSet(instance=campaign), ImportFileForm()
        )
    file_form = ImportFileForm(request.POST, request.FILES, receiver=receiver, required=False)
    return _save(request, campaign_id=None, file_form=file_form)


@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    if not campaign.is_editable:
        messages.error(request, _read_only_message(campaign.status))
        return see_other(campaign.get_absolute_url())
    # A campaign with more recipients than the nested form takes is edited
    # without them. Its recipients are edited one at a time in the table on
    # the campaign page. That form posts RECIPIENTS_IN_TABLE, so a campaign
    # that shrank meanwhile is still saved without touching its recipients.
    in_table = _has_too_many_rows(campaign) or RECIPIENTS_IN_TABLE in request.POST
    if request.method == "GET":
        if in_table:
            return _render_campaign_form(request, CampaignForm(instance=campaign))
        return _render_form(
            request, CampaignForm(instance=campaign), RecipientFormSet(instance=campaign)
        )
    if in_table:
        return _save_campaign_only(request, campaign)
    return _save(request, campaign_id=campaign.pk)


def _has_too_many_rows(campaign: Campaign) -> bool:
    """Return whether the campaign has more recipients than the nested form takes.

    Reads the status counts, so the cost does not grow with the campaign.
    """
    return campaign.progress().total > settings.MAX_RECIPIENT_ROWS


def _save_campaign_only(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Validate and save the campaign's own fields; its recipients stay as they are."""
    form = CampaignForm(request.POST, instance=campaign)
    if not form.is_valid():
        return _render_campaign_form(request, form, status=422)
    with transaction.atomic():
        if not _lock_if_pending(campaign.pk):
            messages.error(request, _read_only_message(_stored_status(campaign.pk)))
            return see_other(campaign.get_absolute_url())
        form.save()
        record(campaign, Action.EDITED, request.user)
        _refresh_other_pages_on_commit(request, campaign.pk)
    logger.info("campaign %s: saved without its recipients", campaign.pk)
    messages.success(request, f"Campaign “{campaign.name}” saved.")
    return see_other(campaign.get_absolute_url())


def _lock_if_pending(campaign_id: int) -> bool:
    """Lock the campaign row until the transaction ends; return whether it is pending."""
    return (
        Campaign.objects.select_for_update()
        .filter(pk=campaign_id, status=Campaign.Status.PENDING)
        .exists()
    )


def _save(
    request: HttpRequest, campaign_id: int | None, file_form: ImportFileForm | None = None
) -> HttpResponse:
    """Validate and save the posted campaign form; a new campaign when `campaign_id` is None.

    With a file in `file_form`, the campaign needs no typed row, and its
    import is created in the same transaction, waiting for its mapping.
    """
    form, formset = _bind(request, campaign_id)
    if file_form is not None and file_form.has_file:
        # The file brings the recipients, so no typed row is required.
        formset.validate_min = False
    forms_valid = [form.is_valid(), formset.is_valid()]
    if file_form is not None:
        forms_valid.append(file_form.is_valid())
    if not all(forms_valid):
        return _render_form(request, form, formset, file_form, status=422)

    campaign = form.instance
    try:
        with transaction.atomic():
            # The row lock makes a concurrent dispatch wait for this save, and
            # the status check rejects a save that comes after a dispatch.
            if campaign_id is not None and not (
                Campaign.objects.select_for_update()
                .filter(pk=campaign_id, status=Campaign.Status.PENDING)
                .exists()
            ):
                messages.error(request, _read_only_message(_stored_status(campaign_id)))
                return see_other(campaign.get_absolute_url())
            form.save()
            formset.save()
            upload = file_form.cleaned_data.get("file") if file_form is not None else None
            recipient_import = None
            if upload is not None:
                assert file_form is not None
                assert file_form.file_format is not None and file_form.preview is not None
                recipient_import = uploads.create_import(
                    campaign, upload, file_form.file_format, file_form.preview
                )
            if campaign_id is None:
                record(campaign, Action.CREATED, request.user)
            else:
                record(campaign, Action.EDITED, request.user)
    except IntegrityError:
        # Another request changed the same rows between validation and save.
        # The failed save left primary keys on the bound instances, so the
        # form is bound again from the posted data before it is shown.
        logger.warning("campaign %s: recipients conflict on save", campaign_id, exc_info=True)
        form, formset = _bind(request, campaign_id)
        form.is_valid()
        formset.is_valid()
        formset.non_form_errors().append(_CONFLICT_MESSAGE)
        return _render_form(request, form, formset, file_form, status=422)

    verb = "created" if campaign_id is None else "saved"
    logger.info("campaign %s: %s", campaign.pk, verb)
    if recipient_import is not None:
        assert file_form is not None
        file_form.keep_file()
        messages.success(
            request,
            f"Campaign “{campaign.name}” {verb}. Choose the columns of "
            f"“{recipient_import.file_name}” to import its recipients.",
        )
        return see_other(recipient_import.get_absolute_url())
    messages.success(request, f"Campaign “{campaign.name}” {verb}.")
    return see_other(campaign.get_absolute_url())


def _bind(
    request: HttpRequest, campaign_id: int | None
) -> tuple[CampaignForm, BaseInlineFormSet[Any, Any, Any]]:
    campaign = (
        Campaign(workspace=current_workspace(request))
        if campaign_id is None
        else get_campaign(request, campaign_id)
    )
    form = CampaignForm(request.POST, instance=campaign)
    formset = RecipientFormSet(request.POST, instance=campaign)
    return form, formset


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    if not campaign.is_editable:
        messages.error(request, _read_only_message(campaign.status))
        return see_other(campaign.get_absolute_url())
    if request.method == "GET":
        context = {
            "campaign": campaign,
            # From the status counts: a COUNT would read every recipient.
            "recipient_count": campaign.progress().total,
            "active_import": campaign.active_import(),
        }
        return render(request, "campaigns/confirm_delete.html", context)

    with transaction.atomic():
        deleted = campaign.delete_if_pending()
        if deleted:
            record(campaign, Action.DELETED, request.user)
    if not deleted:
        messages.error(request, _read_only_message(_stored_status(pk)))
        return see_other(campaign.get_absolute_url())
    logger.info("campaign %s: deleted", pk)
    messages.success(request, f"Campaign “{campaign.name}” deleted.")
    return see_other("/")


@require_POST
def dispatch(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    started = actions.dispatch(campaign, request.user)
    if started:
        logger.info("campaign %s: dispatch requested", campaign.pk)
        messages.success(request, "Dispatch started. Recipients update below as they are sent.")
        return see_other(campaign.get_absolute_url())

    campaign.refresh_from_db()
    missing = campaign.missing_content() if campaign.status == Campaign.Status.PENDING else []
    if missing:
        for problem in missing:
            messages.error(request, f"Not dispatched. {problem}")
    elif campaign.status == Campaign.Status.PENDING and campaign.active_import() is not None:
        messages.error(
            request,
            "An import into this campaign is still running. Dispatch it once the import "
            "has finished, so that every imported recipient is included.",
        )
    elif campaign.status == Campaign.Status.PENDING:
        messages.error(request, "This campaign has no recipients to dispatch. Add one first.")
    elif campaign.status == Campaign.Status.CANCELLED:
        messages.error(request, "This campaign was cancelled, so it cannot be dispatched.")
    else:
        messages.info(request, "This campaign was already dispatched.")
    return see_other(campaign.get_absolute_url())


@require_POST
def pause(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    paused = actions.pause(campaign, request.user, "paused by an operator")
    if paused:
        logger.info("campaign %s: paused by an operator", pk)
        messages.success(
            request, "Paused. Deliveries already in flight finish; nothing new starts."
        )
    else:
        messages.error(
            request, f"Only a processing campaign can be paused; this one is {_status(pk)}."
        )
    return see_other(campaign.get_absolute_url())


@require_POST
def resume(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    result = actions.resume(campaign, request.user)
    resumed, completed = result.resumed, result.completed
    if not resumed:
        messages.error(
            request, f"Only a paused campaign can be resumed; this one is {_status(pk)}."
        )
        return see_other(campaign.get_absolute_url())

    logger.info("campaign %s: resumed by an operator", pk)
    if completed:
        logger.info("campaign %s: completed on resume because nothing was left to deliver", pk)
        messages.success(request, "Resumed; nothing was left to deliver, so it is completed.")
    else:
        messages.success(request, "Resumed. Delivery continues with the queued recipients.")
    return see_other(campaign.get_absolute_url())


@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    cancelled = actions.cancel(campaign, request.user, turbo_request_id=turbo_request_id(request))
    if cancelled:
        logger.info("campaign %s: cancelled by an operator", pk)
        messages.success(
            request,
            "Cancelled. Queued recipients will not be sent; deliveries in flight keep "
            "their outcome.",
        )
    else:
        messages.error(request, f"This campaign can no longer be cancelled; it is {_status(pk)}.")
    return see_other(campaign.get_absolute_url())


@require_POST
def retry_failed(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    with transaction.atomic():
        queued = campaign.retry_failed()
        if queued:
            record(
                campaign,
                Action.RETRIED_FAILED,
                request.user,
                f"{queued} failed recipient{pluralize(queued)} queued again",
            )
            transaction.on_commit(partial(dispatch_campaign_later, campaign.pk))
            _refresh_other_pages_on_commit(request, campaign.pk)
    if queued:
        logger.info("campaign %s: %d failed recipients queued again", pk, queued)
        messages.success(request, f"{queued} failed recipient{pluralize(queued)} queued again.")
    elif campaign.status == Campaign.Status.COMPLETED:
        messages.error(
            request,
            "No failed recipient can be retried: only failures from transient errors "
            "(timeouts, rate limits, server errors) are retried.",
        )
    else:
        messages.error(
            request, f"Only a completed campaign can retry failures; this one is {_status(pk)}."
        )
    return see_other(campaign.get_absolute_url())


@require_POST
def duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    importing = campaign.active_import() is not None
    with transaction.atomic():
        copy = campaign.duplicate()
        record(copy, Action.DUPLICATED, request.user, f"duplicated from #{campaign.pk}")
    logger.info("campaign %s: duplicated as campaign %s", pk, copy.pk)
    message = (
        f"Campaign “{copy.name}” created as a copy of “{campaign.name}”, with every "
        "recipient queued. It is pending until you dispatch it."
    )
    if importing:
        message += (
            " An import into the original was still running: its rows go to the original "
            "only, so import the file into the copy too if it needs them."
        )
    messages.success(request, message)
    return see_other(copy.get_absolute_url())


@require_GET
def attempts(request: HttpRequest, pk: int, recipient_pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    recipient = get_object_or_404(Recipient, pk=recipient_pk, campaign_id=campaign.pk)
    context = {
        "recipient": recipient,
        "attempts": recipient.delivery_attempts.order_by("number", "id"),
    }
    return render(request, "campaigns/attempts.html", context)


def _stored_status(pk: int) -> str | None:
    """Return the campaign's status in the database, or None when it was deleted."""
    return Campaign.objects.filter(pk=pk).values_list("status", flat=True).first()


def _read_only_message(status: str | None) -> str:
    """Build the message that explains why a campaign in `status` cannot be edited or deleted."""
    if status == Campaign.Status.CANCELLED:
        return _CANCELLED_MESSAGE
    if status is None:
        return "This campaign was deleted."
    return _READ_ONLY_MESSAGE


def _refresh_other_pages_on_commit(request: HttpRequest, campaign_id: int) -> None:
    """Ask every open page of the campaign to refresh once the transaction commits.

    The refresh carries the request's Turbo request id, so the page that made
    the request keeps its flash message and skips the refresh.
    """
    transaction.on_commit(partial(broadcast_refresh, campaign_id, turbo_request_id(request)))


def _status(pk: int) -> str:
    status = Campaign.objects.filter(pk=pk).values_list("status", flat=True).first()
    return Campaign.Status(status).label.lower() if status else "deleted"


def _render_form(
    request: HttpRequest,
    form: CampaignForm,
    formset: BaseInlineFormSet[Any, Any, Any],
    file_form: ImportFileForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render the campaign form; `file_form` adds the CSV file input of the new-campaign page."""
    context = {
        "form": form,
        "formset": formset,
        "file_form": file_form,
        "campaign": form.instance,
        "max_megabytes": settings.IMPORT_MAX_FILE_MEGABYTES,
    }
    return render(request, "campaigns/form.html", context, status=status)


def _render_campaign_form(
    request: HttpRequest, form: CampaignForm, status: int = 200
) -> HttpResponse:
    """Render the edit page of a campaign whose recipients are edited in its table."""
    context = {
        "form": form,
        "campaign": form.instance,
        "recipients_in_table": RECIPIENTS_IN_TABLE,
        "max_recipient_rows": settings.MAX_RECIPIENT_ROWS,
    }
    return render(request, "campaigns/form.html", context, status=status)
