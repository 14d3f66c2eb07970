"""The workspace pages: its members and settings for owners, and creating a workspace.

Every page works on the request's current workspace (accounts/workspaces.py),
so no URL names a workspace, and a membership of another workspace is a 404.
Changes to members happen under the workspace's row lock, which keeps the
last owner from being demoted or removed by two requests at once.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Membership, Role, Workspace, join_workspace
from accounts.workspace_forms import MemberAddForm, MemberRoleForm, WorkspaceNameForm
from accounts.workspaces import current_workspace, owner_required, switch_workspace
from audit.models import Action, AuditEvent, record_workspace
from campaigns.models import Campaign
from campaigns.views import see_other

logger = logging.getLogger(__name__)

# The workspace page shows this many of the newest changes to the workspace.
EVENTS_ON_WORKSPACE_PAGE = 20


def _last_owner_message(request: HttpRequest, membership: Membership) -> str:
    """Explain why the workspace's last owner cannot step down or leave."""
    who = (
        "You are"
        if membership.user_id == request.user.pk
        else f"{membership.user.get_username()} is"
    )
    return (
        f"{who} the last owner of this workspace. Make another member an owner first, "
        "adding one if needed, so that someone can still manage it."
    )


def _with_article(role: str) -> str:
    """Return "an owner" or "a member"."""
    label = Role(role).label.lower()
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


@require_GET
def workspace(request: HttpRequest) -> HttpResponse:
    """Show the workspace's members, and for owners the forms that change them."""
    if getattr(request, "workspace", None) is None:
        return render(request, "accounts/no_workspace.html", status=403)
    return _workspace_page(request)


def _workspace_page(
    request: HttpRequest,
    name_form: WorkspaceNameForm | None = None,
    add_form: MemberAddForm | None = None,
    status: int = 200,
) -> HttpResponse:
    current = current_workspace(request)
    members = list(
        Membership.objects.filter(workspace=current)
        .select_related("user")
        .order_by("user__username", "id")
    )
    events = AuditEvent.objects.filter(workspace=current, campaign_name="").order_by(
        "-created_at", "-id"
    )[:EVENTS_ON_WORKSPACE_PAGE]
    context = {
        "current": current,
        "members": members,
        "owner_count": sum(1 for member in members if member.is_owner),
        "is_owner": request.membership.is_owner,  # type: ignore[attr-defined]
        "name_form": name_form or WorkspaceNameForm(instance=current, user=request.user),
        "add_form": add_form or MemberAddForm(workspace=current),
        "role_choices": Role.choices,
        "events": list(events),
    }
    return render(request, "accounts/workspace.html", context, status=status)


@require_POST
@owner_required
def rename(request: HttpRequest) -> HttpResponse:
    current = current_workspace(request)
    old_name = current.name
    form = WorkspaceNameForm(
        request.POST, instance=Workspace(pk=current.pk, name=current.name), user=request.user
    )
    if not form.is_valid():
        return _workspace_page(request, name_form=form, status=422)
    new_name = form.cleaned_data["name"]
    if new_name == old_name:
        messages.info(request, "The name is unchanged.")
        return see_other(reverse("accounts:workspace"))
    with transaction.atomic():
        Workspace.objects.filter(pk=current.pk).update(name=new_name)
        record_workspace(
            current, Action.WORKSPACE_RENAMED, request.user, f"{old_name} → {new_name}"
        )
    logger.info("workspace %s: renamed", current.pk)
    messages.success(request, f"The workspace is now called “{new_name}”.")
    return see_other(reverse("accounts:workspace"))


@require_POST
@owner_required
def member_add(request: HttpRequest) -> HttpResponse:
    """Add an existing account to the workspace, or invite an email address by email."""
    current = current_workspace(request)
    form = MemberAddForm(request.POST, workspace=current)
    if not form.is_valid():
        return _workspace_page(request, add_form=form, status=422)
    role = form.cleaned_data["role"]
    account = form.cleaned_data["account"]
    address = form.cleaned_data["user"]
    try:
        with transaction.atomic():
            if account is None:
                account = _new_account(address)
            membership, created = join_workspace(account, current, role)
            if created:
                record_workspace(
                    current,
                    Action.MEMBER_ADDED,
                    request.user,
                    f"{account.get_username()} as {membership.get_role_display().lower()}",
                )
            # Someone invited earlier who has not chosen a password yet gets
            # a new link too: the first one may have expired.
            invited = created and not account.has_usable_password()
            if invited:
                _send_invitation(request, account, current)
    except OSError as exc:
        # The invitation could not be sent, and the new account rolled back.
        logger.warning("workspace %s: invitation not sent: %s", current.pk, exc)
        form.add_error(
            "user",
            f"The invitation could not be sent ({exc}), so nobody was added. "
            "Check the mail settings and try again.",
        )
        return _workspace_page(request, add_form=form, status=422)
    if not created:
        messages.info(request, f"{account.get_username()} is already a member of this workspace.")
    elif invited:
        messages.success(
            request,
            f"Invitation sent to {account.email}. They join as {_with_article(membership.role)} "
            "and choose a password through the link.",
        )
    else:
        messages.success(
            request,
            f"{account.get_username()} is now {_with_article(membership.role)} "
            f"of “{current.name}”.",
        )
    logger.info("workspace %s: member %s added", current.pk, account.pk)
    return see_other(reverse("accounts:workspace"))


def _new_account(address: str) -> Any:
    """Create an account without a password for an invited email address.

    Its username is the address in lower case.
    """
    user_model = get_user_model()
    account = user_model(username=address.lower(), email=address)
    account.set_unusable_password()
    account.save()
    return account


def _send_invitation(request: HttpRequest, account: Any, current: Workspace) -> None:
    """Email the account a link to choose a password and sign in to `current`.

    The link is a password reset link, valid for PASSWORD_RESET_TIMEOUT
    seconds. After that, the person requests a new one on the sign-in page.
    Raises OSError when the message cannot be sent.
    """
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(account.pk)),
            "token": default_token_generator.make_token(account),
        },
    )
    context = {
        "inviter": request.user.get_username(),
        "workspace": current.name,
        "username": account.get_username(),
        "link": settings.SITE_URL + path,
        "days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    # Header values cannot contain line breaks; a name set in the admin might.
    one_line_name = " ".join(current.name.split())
    send_mail(
        f"You are invited to “{one_line_name}” on Campaign Dispatcher",
        render_to_string("accounts/invitation_email.txt", context),
        None,
        [account.email],
    )


@require_POST
@owner_required
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    current = current_workspace(request)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner or member as the role.")
        return see_other(reverse("accounts:workspace"))
    role = form.cleaned_data["role"]
    with transaction.atomic():
        membership = _locked_membership(current, pk)
        name = membership.user.get_username()
        if membership.role == role:
            messages.info(request, f"{name} is already {_with_article(role)}.")
            return see_other(reverse("accounts:workspace"))
        if membership.is_owner and _is_last_owner(current):
            messages.error(request, _last_owner_message(request, membership))
            return see_other(reverse("accounts:workspace"))
        old_role = membership.get_role_display().lower()
        membership.role = role
        membership.save(update_fields=["role"])
        new_role = membership.get_role_display().lower()
        record_workspace(
            current, Action.MEMBER_ROLE_CHANGED, request.user, f"{name}: {old_role} → {new_role}"
        )
    logger.info("workspace %s: member %s is now %s", current.pk, membership.user_id, role)
    messages.success(request, f"{name} is now {_with_article(role)}.")
    return see_other(reverse("accounts:workspace"))


@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for confirmation (GET), then remove the member (POST).

    Owners remove anyone; a member may remove only themselves, which is how
    they leave the workspace.
    """
    current = current_workspace(request)
    membership = Membership.objects.filter(pk=pk, workspace=current).select_related("user").first()
    if membership is None:
        raise Http404("No member matches the given query.")
    leaving = membership.user_id == request.user.pk
    if not leaving and not request.membership.is_owner:  # type: ignore[attr-defined]
        return render(request, "accounts/owner_required.html", status=403)
    if request.method == "GET":
        context = {"current": current, "membership": membership, "leaving": leaving}
        return render(request, "accounts/member_confirm_remove.html", context)

    with transaction.atomic():
        membership = _locked_membership(current, pk)
        name = membership.user.get_username()
        if membership.is_owner and _is_last_owner(current):
            messages.error(request, _last_owner_message(request, membership))
            return see_other(reverse("accounts:workspace"))
        membership.delete()
        record_workspace(current, Action.MEMBER_REMOVED, request.user, name)
    logger.info("workspace %s: member %s removed", current.pk, membership.user_id)
    if leaving:
        messages.success(request, f"You left “{current.name}”.")
        return see_other(reverse("campaigns:index"))
    messages.success(request, f"{name} was removed from “{current.name}”.")
    return see_other(reverse("accounts:workspace"))


def _locked_membership(current: Workspace, pk: int) -> Membership:
    """Lock the workspace row, then return its membership `pk`, or raise Http404.

    Every change to a workspace's members takes this lock first, so two
    requests cannot each demote one of the last two owners.
    """
    Workspace.objects.select_for_update().filter(pk=current.pk).first()
    membership = Membership.objects.filter(pk=pk, workspace=current).select_related("user").first()
    if membership is None:
        raise Http404("No member matches the given query.")
    return membership


def _is_last_owner(current: Workspace) -> bool:
    return Membership.objects.filter(workspace=current, role=Role.OWNER).count() <= 1


@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    """Create a workspace whose owner is the user, and switch to it."""
    if request.method == "GET":
        form = WorkspaceNameForm(user=request.user)
        return render(request, "accounts/workspace_new.html", {"form": form})
    form = WorkspaceNameForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(request, "accounts/workspace_new.html", {"form": form}, status=422)
    with transaction.atomic():
        created = form.save()
        join_workspace(request.user, created, Role.OWNER)
        record_workspace(created, Action.WORKSPACE_CREATED, request.user, created.name)
    switch_workspace(request, created.pk)
    logger.info("workspace %s: created", created.pk)
    messages.success(
        request, f"Workspace “{created.name}” created. You are its owner and are working in it."
    )
    return see_other(reverse("campaigns:index"))


@require_http_methods(["GET", "POST"])
@owner_required
def delete(request: HttpRequest) -> HttpResponse:
    """Ask for confirmation (GET), then delete the workspace (POST), if it has no campaigns.

    Its memberships, suppression list and activity log go with it. A
    workspace with campaigns is kept: each campaign is deleted on its own
    first, which only a pending campaign allows, so nothing that was sent is
    forgotten by accident.
    """
    current = current_workspace(request)
    campaigns = Campaign.objects.filter(workspace=current).count()
    if request.method == "GET":
        context = {"current": current, "campaigns": campaigns}
        return render(request, "accounts/workspace_confirm_delete.html", context)
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=current.pk).first()
        if Campaign.objects.filter(workspace=current).exists():
            messages.error(
                request,
                f"“{current.name}” still has campaigns. Delete them first; only a workspace "
                "without campaigns can be deleted.",
            )
            return see_other(reverse("accounts:workspace"))
        Workspace.objects.filter(pk=current.pk).delete()
    logger.info("workspace %s: deleted by user %s", current.pk, request.user.pk)
    messages.success(request, f"Workspace “{current.name}” deleted.")
    return see_other(reverse("campaigns:index"))
