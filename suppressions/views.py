"""The suppression list pages and the unsubscribe pages that links in messages open."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import Workspace, default_workspace
from accounts.workspaces import current_workspace
from campaigns.models import Campaign
from campaigns.views import see_other
from suppressions.forms import SuppressionAddForm, SuppressionSearchForm
from suppressions.models import Suppression, SuppressionReason, is_suppressed, suppress
from suppressions.tokens import InvalidToken, UnsubscribeToken, read_token

logger = logging.getLogger(__name__)

SUPPRESSIONS_PER_PAGE = 50

# Link scanners check the links in messages with HEAD, which gets the
# headers of the GET page and, like GET, changes nothing.
READ_METHODS = ("GET", "HEAD")
UNSUBSCRIBE_METHODS = [*READ_METHODS, "POST"]


@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """Show the suppression list with a search (GET), or add an entry from the form (POST)."""
    workspace = current_workspace(request)
    add_form = SuppressionAddForm(
        request.POST if request.method == "POST" else None, workspace_id=workspace.pk
    )
    if request.method == "POST" and add_form.is_valid():
        entry, created = suppress(
            email=add_form.cleaned_data["email"],
            phone=add_form.cleaned_data["phone"],
            reason=SuppressionReason.OPERATOR,
            workspace_id=workspace.pk,
        )
        if created:
            logger.info("suppression %s: added by an operator", entry.pk)
            messages.success(request, f"{entry.address} added to the suppression list.")
        else:
            # Another request added it after the form's check.
            messages.info(request, f"{entry.address} is already on the suppression list.")
        return see_other(reverse("suppressions:index"))

    search_form = SuppressionSearchForm(request.GET)
    entries = (
        Suppression.objects.filter(workspace=workspace)
        .select_related("source_campaign")
        .order_by("-created_at", "-id")
    )
    status = 422 if add_form.is_bound else 200
    if search_form.is_valid():
        entries = search_form.filter(entries)
    else:
        entries = entries.none()
        status = 400
    page = Paginator(entries, SUPPRESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "add_form": add_form,
        "search_form": search_form,
        "page": page,
        "query": search_form.cleaned_data.get("q", "") if search_form.is_valid() else "",
    }
    return render(request, "suppressions/index.html", context, status=status)


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for confirmation (GET), then remove the entry from the suppression list (POST)."""
    entry = get_object_or_404(Suppression, pk=pk, workspace=current_workspace(request))
    if request.method == "GET":
        return render(request, "suppressions/confirm_delete.html", {"entry": entry})
    entry.delete()
    logger.info("suppression %s: deleted by an operator", pk)
    messages.success(
        request, f"{entry.address} removed from the suppression list; it can be sent to again."
    )
    return see_other(reverse("suppressions:index"))


@login_not_required
@require_http_methods(UNSUBSCRIBE_METHODS)
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Show the unsubscribe confirmation (GET, HEAD), or add the address to the list (POST).

    GET changes nothing, because mail scanners open the links in messages
    before their recipients do. The POST is the page's form, with its CSRF token.
    """
    if request.method in READ_METHODS:
        return _confirmation_page(request, token)
    try:
        unsubscribe_token = read_token(token)
    except InvalidToken as exc:
        logger.info("unsubscribe rejected: %s", exc)
        return _invalid_link_page(request, exc)
    _unsubscribe(unsubscribe_token, "the unsubscribe page")
    return render(request, "suppressions/unsubscribed.html", {"address": unsubscribe_token.address})


# Mail clients send the one-click POST without a session or a CSRF token, so
# the signed token is what proves that the request comes from the message.
@login_not_required
@csrf_exempt
@require_http_methods(UNSUBSCRIBE_METHODS)
def one_click(request: HttpRequest, token: str) -> HttpResponse:
    """Add the token's address to the suppression list, for an RFC 8058 one-click POST,
    or show the unsubscribe confirmation (GET, HEAD).

    The POST body must be `List-Unsubscribe=One-Click`, the value that the
    message's `List-Unsubscribe-Post` header names for the mail client to post.
    A POST without it is rejected, so that no other form can post here by
    accident. Mail clients without RFC 8058 open the `List-Unsubscribe` URL
    with a GET, which gets the page of `/u/<token>` and changes nothing.
    """
    if request.method in READ_METHODS:
        return _confirmation_page(request, token)
    try:
        unsubscribe_token = read_token(token)
    except InvalidToken as exc:
        logger.info("one-click unsubscribe rejected: %s", exc)
        return HttpResponseBadRequest(f"{exc}\n", content_type="text/plain; charset=utf-8")
    if request.POST.get("List-Unsubscribe") != "One-Click":
        logger.info(
            "one-click unsubscribe rejected: body without List-Unsubscribe=One-Click "
            "(campaign %s, recipient %s)",
            unsubscribe_token.campaign_id,
            unsubscribe_token.recipient_id,
        )
        return HttpResponseBadRequest(
            "The request body must be List-Unsubscribe=One-Click (RFC 8058 one-click "
            "unsubscribe).\n",
            content_type="text/plain; charset=utf-8",
        )
    _unsubscribe(unsubscribe_token, "a one-click request")
    return HttpResponse(
        "Unsubscribed: no more messages will be sent to this address.\n",
        content_type="text/plain; charset=utf-8",
    )


def _confirmation_page(request: HttpRequest, token: str) -> HttpResponse:
    """Render the unsubscribe confirmation, whose form posts to `/u/<token>`.

    For an address already on the suppression list, it renders the
    "already unsubscribed" page instead, which has no form.
    """
    try:
        unsubscribe_token = read_token(token)
    except InvalidToken as exc:
        logger.info("unsubscribe page rejected: %s", exc)
        return _invalid_link_page(request, exc)
    email, phone = _email_and_phone(unsubscribe_token)
    workspace_id = _token_workspace(unsubscribe_token)
    if workspace_id is not None and is_suppressed(email, phone, workspace_id=workspace_id):
        return render(
            request,
            "suppressions/unsubscribed.html",
            {"address": unsubscribe_token.address, "already_unsubscribed": True},
        )
    return render(
        request,
        "suppressions/unsubscribe.html",
        {"address": unsubscribe_token.address, "token": token},
    )


def _invalid_link_page(request: HttpRequest, exc: InvalidToken) -> HttpResponse:
    return render(request, "suppressions/unsubscribe_invalid.html", {"error": str(exc)}, status=400)


def _unsubscribe(token: UnsubscribeToken, source: str) -> None:
    # The campaign may have been deleted since the message went out, and the
    # recipient id is 0 in a test send's message. Neither is looked up: the
    # address is suppressed all the same, and `suppress` records the
    # campaign only while it exists.
    email, phone = _email_and_phone(token)
    workspace_id = _token_workspace(token)
    if workspace_id is None:
        # The workspace was deleted with its campaigns, so nothing will be
        # sent from it again: the person is unsubscribed without an entry.
        logger.info(
            "unsubscribe through %s for a deleted workspace (campaign %s): nothing to record",
            source,
            token.campaign_id,
        )
        return
    entry, created = suppress(
        email=email,
        phone=phone,
        reason=SuppressionReason.UNSUBSCRIBED,
        workspace_id=workspace_id,
        campaign_id=token.campaign_id,
    )
    logger.info(
        "suppression %s: %s through %s (campaign %s, recipient %s)",
        entry.pk,
        "added" if created else "already present",
        source,
        token.campaign_id,
        token.recipient_id,
    )


def _token_workspace(token: UnsubscribeToken) -> int | None:
    """Return the id of the workspace whose suppression list the token's address goes on,
    or None when that workspace was deleted.

    A token signed before workspaces existed names none: the campaign's
    workspace is used, or the oldest workspace when the campaign is gone,
    which is where the migration put every earlier campaign.
    """
    if token.workspace_id is not None:
        exists = Workspace.objects.filter(pk=token.workspace_id).exists()
        return token.workspace_id if exists else None
    campaign_workspace = (
        Campaign.objects.filter(pk=token.campaign_id).values_list("workspace_id", flat=True).first()
    )
    if campaign_workspace is not None:
        return campaign_workspace
    return default_workspace().pk


def _email_and_phone(token: UnsubscribeToken) -> tuple[str, str]:
    """Return the token's address as (email, "") or ("", phone)."""
    return (token.address, "") if token.is_email else ("", token.address)
