"""Pages for adding, editing and deleting one recipient of a pending campaign.

These pages edit campaigns of any size, one row at a time, from the
recipients table of the campaign page. Every write locks the campaign row and
checks that the campaign is still pending, as the campaign form does, so a
dispatch that arrives at the same moment waits and then reads the final
recipients, and a write that comes after a dispatch is rejected.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.workspaces import get_campaign
from audit.models import Action, record
from campaigns.forms import RecipientForm
from campaigns.models import Campaign, Recipient
from campaigns.views import (
    _lock_if_pending,
    _read_only_message,
    _refresh_other_pages_on_commit,
    _stored_status,
    see_other,
)

logger = logging.getLogger(__name__)

DUPLICATE_EMAIL_MESSAGE = "Another recipient of this campaign has this email address."
DUPLICATE_PHONE_MESSAGE = "Another recipient of this campaign has this phone number."

# The unique index behind each field, for the error of a save that the
# database rejected (see Recipient.Meta.constraints).
_FIELD_BY_CONSTRAINT = {
    "recipient_unique_email_per_campaign": ("email", DUPLICATE_EMAIL_MESSAGE),
    "recipient_unique_phone_per_campaign": ("phone_number", DUPLICATE_PHONE_MESSAGE),
}


@require_http_methods(["GET", "POST"])
def create(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    if not campaign.is_editable:
        messages.error(request, _read_only_message(campaign.status))
        return see_other(campaign.get_absolute_url())
    if request.method == "GET":
        form = RecipientForm(instance=Recipient(campaign=campaign))
        return _render_form(request, campaign, form)

    form = RecipientForm(request.POST, instance=Recipient(campaign=campaign))
    return _save(request, campaign, form)


@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int, recipient_pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    recipient = get_object_or_404(Recipient, pk=recipient_pk, campaign_id=campaign.pk)
    recipient.campaign = campaign
    if not campaign.is_editable:
        messages.error(request, _read_only_message(campaign.status))
        return see_other(campaign.get_absolute_url())
    if request.method == "GET":
        return _render_form(request, campaign, RecipientForm(instance=recipient))

    return _save(request, campaign, RecipientForm(request.POST, instance=recipient))


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int, recipient_pk: int) -> HttpResponse:
    campaign = get_campaign(request, pk)
    recipient = get_object_or_404(Recipient, pk=recipient_pk, campaign_id=campaign.pk)
    recipient.campaign = campaign
    if not campaign.is_editable:
        messages.error(request, _read_only_message(campaign.status))
        return see_other(campaign.get_absolute_url())
    if request.method == "GET":
        context = {
            "campaign": campaign,
            "recipient": recipient,
            "next_url": _return_url(request, campaign),
        }
        return render(request, "campaigns/recipient_confirm_delete.html", context)

    with transaction.atomic():
        if not _lock_if_pending(campaign.pk):
            messages.error(request, _read_only_message(_stored_status(campaign.pk)))
            return see_other(campaign.get_absolute_url())
        deleted, _ = Recipient.objects.filter(pk=recipient.pk, campaign_id=campaign.pk).delete()
        if deleted:
            record(campaign, Action.RECIPIENT_DELETED, request.user, f"recipient #{recipient.pk}")
            _refresh_other_pages_on_commit(request, campaign.pk)

    if deleted:
        logger.info("campaign %s: recipient %s deleted", campaign.pk, recipient.pk)
        messages.success(request, f"Recipient “{recipient}” deleted.")
    else:
        messages.info(request, f"Recipient “{recipient}” was already deleted.")
    return see_other(_return_url(request, campaign))


def _save(request: HttpRequest, campaign: Campaign, form: RecipientForm) -> HttpResponse:
    """Validate and save a posted recipient; a new one when the form's instance has no pk."""
    if not form.is_valid():
        return _render_form(request, campaign, form, status=422)

    is_new = form.instance.pk is None
    try:
        with transaction.atomic():
            # The row lock makes a concurrent dispatch wait for this save, and
            # the status check rejects a save that comes after a dispatch.
            if not _lock_if_pending(campaign.pk):
                messages.error(request, _read_only_message(_stored_status(campaign.pk)))
                return see_other(campaign.get_absolute_url())
            # Every write of a campaign's recipients holds this lock, so no
            # other save can add the same value between this check and the save.
            if _add_duplicate_errors(form, campaign.pk):
                return _render_form(request, campaign, form, status=422)
            recipient = form.save()
            action = Action.RECIPIENT_ADDED if is_new else Action.RECIPIENT_EDITED
            # The id, not the name or address: the log outlives the recipient.
            record(campaign, action, request.user, f"recipient #{recipient.pk}")
            _refresh_other_pages_on_commit(request, campaign.pk)
    except IntegrityError as exc:
        # A write that did not take the campaign lock saved the same value
        # first; the unique index rejected this one.
        logger.warning(
            "campaign %s: recipient save rejected by the database", campaign.pk, exc_info=True
        )
        if is_new:
            form.instance.pk = None
        _add_integrity_error(form, exc)
        return _render_form(request, campaign, form, status=422)

    verb = "added" if is_new else "saved"
    logger.info("campaign %s: recipient %s %s", campaign.pk, recipient.pk, verb)
    messages.success(request, f"Recipient “{recipient}” {verb}.")
    return see_other(_return_url(request, campaign))


def _add_duplicate_errors(form: RecipientForm, campaign_id: int) -> bool:
    """Add an error to each field whose value another recipient of the campaign has.

    Return whether any was added. The queries match the partial unique
    indexes (a lower-case email, values other than empty), so each is one
    index lookup whatever the campaign's size.
    """
    others = Recipient.objects.filter(campaign_id=campaign_id)
    if form.instance.pk is not None:
        others = others.exclude(pk=form.instance.pk)
    email = form.cleaned_data.get("email", "")
    phone = form.cleaned_data.get("phone_number", "")
    found = False
    if email and (
        others.exclude(email="")
        .annotate(email_lower=Lower("email"))
        .filter(email_lower=email.lower())
        .exists()
    ):
        form.add_error("email", DUPLICATE_EMAIL_MESSAGE)
        found = True
    if phone and others.exclude(phone_number="").filter(phone_number=phone).exists():
        form.add_error("phone_number", DUPLICATE_PHONE_MESSAGE)
        found = True
    return found


def _add_integrity_error(form: RecipientForm, error: IntegrityError) -> None:
    """Show a unique index violation next to its field, or any other one on the form."""
    diag = getattr(error.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    field, message = _FIELD_BY_CONSTRAINT.get(
        constraint or "",
        (None, "The recipient could not be saved because the database rejected it."),
    )
    form.add_error(field, message)


def _next_url(request: HttpRequest) -> str:
    """Return the `next` parameter of the request, which the campaign page sets."""
    return request.POST.get("next") or request.GET.get("next") or ""


def _return_url(request: HttpRequest, campaign: Campaign) -> str:
    """Return the campaign page to go back to after a change.

    That is the URL in `next` when it is this campaign's page on this site,
    so the table keeps its page, status filter and search. Any other value
    gives the campaign page itself.
    """
    page = campaign.get_absolute_url()
    candidate = _next_url(request)
    same_site = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if same_site and (candidate == page or candidate.startswith(f"{page}?")):
        return candidate
    return page


def _render_form(
    request: HttpRequest, campaign: Campaign, form: RecipientForm, status: int = 200
) -> HttpResponse:
    context = {
        "campaign": campaign,
        "form": form,
        "recipient": form.instance,
        "next_url": _return_url(request, campaign),
    }
    return render(request, "campaigns/recipient_form.html", context, status=status)
