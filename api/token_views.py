"""The API tokens page of a workspace: create tokens, list them and revoke them.

Any member may create a token for the current workspace. Owners may revoke
any of its tokens, members only their own. A new token is shown once, in
the response to the POST that created it, and never stored.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.workspaces import current_workspace
from api.models import TOKEN_NAME_MAX_LENGTH, ApiToken
from audit.models import Action, record_workspace
from campaigns.views import see_other

logger = logging.getLogger(__name__)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=TOKEN_NAME_MAX_LENGTH,
        error_messages={"required": "Enter a name for the token, such as the system that uses it."},
        widget=forms.TextInput(
            attrs={
                "maxlength": TOKEN_NAME_MAX_LENGTH,
                "placeholder": "CRM sync",
                "autocomplete": "off",
            }
        ),
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Enter a name for the token, such as the system that uses it.")
        return name


@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List the workspace's tokens; a POST creates one and shows it once."""
    workspace = current_workspace(request)
    if request.method == "GET":
        return _render(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=422)
    with transaction.atomic():
        token, secret = ApiToken.issue(workspace.pk, request.user, form.cleaned_data["name"])
        record_workspace(
            workspace, Action.API_TOKEN_CREATED, request.user, f"{token.name} ({token.prefix}…)"
        )
    logger.info("workspace %s: API token %s created", workspace.pk, token.pk)
    return _render(request, ApiTokenForm(), new_token=secret, new_token_name=token.name)


@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a token of the workspace: any of them for an owner, their own for a member."""
    workspace = current_workspace(request)
    token = ApiToken.objects.filter(pk=pk, workspace=workspace).first()
    if token is None or not _may_revoke(request, token):
        raise Http404("No API token matches the given query.")
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record_workspace(
                workspace, Action.API_TOKEN_REVOKED, request.user, f"{token.name} ({token.prefix}…)"
            )
    if revoked:
        logger.info("workspace %s: API token %s revoked", workspace.pk, token.pk)
        messages.success(request, f"Token “{token.name}” revoked. Requests with it now get 401.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return see_other(reverse("accounts:api_tokens"))


def _may_revoke(request: HttpRequest, token: ApiToken) -> bool:
    membership = getattr(request, "membership", None)
    if membership is None:
        return False
    return bool(membership.is_owner or token.created_by_id == request.user.pk)


def _render(
    request: HttpRequest,
    form: ApiTokenForm,
    status: int = 200,
    new_token: str = "",
    new_token_name: str = "",
) -> HttpResponse:
    workspace = current_workspace(request)
    rows = list(ApiToken.objects.filter(workspace=workspace).select_related("created_by"))
    context = {
        "current": workspace,
        "form": form,
        "rows": [(token, _may_revoke(request, token)) for token in rows],
        "new_token": new_token,
        "new_token_name": new_token_name,
    }
    return render(request, "api/tokens.html", context, status=status)
