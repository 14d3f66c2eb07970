"""The current workspace of a request, and the campaigns that a request may reach.

The current workspace is kept in the session, under SESSION_KEY, and chosen
with the switcher in the page header. A session starts in the workspace that
the user joined first, and stays in it until the user switches: being added
to another workspace, which any owner can do, never moves the user's work
there. URLs do not name the workspace: a
campaign's URL is the same for everyone who may open it, and a campaign of
another workspace returns 404, as if it did not exist.

WorkspaceMiddleware sets `request.workspace` and `request.membership` for
every signed-in request, with one query, and refuses the pages that need a
workspace to a user who belongs to none.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, cast

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from accounts.models import Membership, Workspace
from campaigns.models import Campaign
from ops import context as log_context

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

SESSION_KEY = "workspace_id"

# URL namespaces whose views work without a workspace: signing in and out,
# passwords and the workspace pages themselves, and the Django admin, which
# is for superusers and shows every workspace.
NAMESPACES_WITHOUT_WORKSPACE = {"accounts", "admin"}


def user_memberships(user: AbstractBaseUser) -> list[Membership]:
    """Return the user's memberships with their workspaces, by workspace name."""
    return list(
        Membership.objects.filter(user_id=user.pk)
        .select_related("workspace")
        .order_by("workspace__name", "workspace_id")
    )


def choose_membership(request: HttpRequest, memberships: list[Membership]) -> Membership | None:
    """Return the membership of the session's workspace, or else the oldest one, which
    then becomes the session's workspace.

    A session whose workspace the user has left falls back the same way, so
    removing a member takes effect at their next request.
    """
    chosen = request.session.get(SESSION_KEY)
    for membership in memberships:
        if membership.workspace_id == chosen:
            return membership
    if not memberships:
        return None
    oldest = min(memberships, key=lambda membership: (membership.created_at, membership.pk))
    request.session[SESSION_KEY] = oldest.workspace_id
    return oldest


def start_in_first_workspace(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Make the workspace that the user joined first the new session's workspace.

    Connected to user_logged_in. Choosing it at sign-in saves the session a
    write on the first page. choose_membership does the same for a session
    that has no workspace or names one that the user has left.
    """
    first = Membership.objects.filter(user_id=user.pk).order_by("created_at", "id").first()
    if first is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = first.workspace_id


def switcher_label(membership: Membership, memberships: list[Membership]) -> str:
    """Return the name to show for the membership's workspace in the switcher.

    Names are not unique, and an owner of another workspace can add anyone,
    so a name that two of the user's workspaces share gets the workspace id.
    """
    name = membership.workspace.name
    twins = sum(1 for other in memberships if other.workspace.name == name)
    return f"{name} (#{membership.workspace_id})" if twins > 1 else name


def switch_workspace(request: HttpRequest, workspace_id: int) -> Membership | None:
    """Make `workspace_id` the session's workspace if the user belongs to it.

    Returns the membership, or None when the user is not a member.
    """
    if not request.user.is_authenticated:
        return None
    membership = (
        Membership.objects.filter(user_id=request.user.pk, workspace_id=workspace_id)
        .select_related("workspace")
        .first()
    )
    if membership is not None:
        request.session[SESSION_KEY] = membership.workspace_id
    return membership


class WorkspaceMiddleware(MiddlewareMixin):
    """Set request.workspace and request.membership for signed-in users.

    Anonymous requests and views marked @login_not_required get None. A
    signed-in user without any workspace gets a 403 page that explains why, except
    on the views of NAMESPACES_WITHOUT_WORKSPACE. Under ASGI, Django runs
    process_view in a thread, as it does LoginRequiredMiddleware's.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        request.memberships = []  # type: ignore[attr-defined]
        if not getattr(view_func, "login_required", True) or not request.user.is_authenticated:
            return None
        memberships = user_memberships(request.user)
        membership = choose_membership(request, memberships)
        for each in memberships:
            each.label = switcher_label(each, memberships)  # type: ignore[attr-defined]
        request.memberships = memberships  # type: ignore[attr-defined]
        if membership is not None:
            request.membership = membership  # type: ignore[attr-defined]
            request.workspace = membership.workspace  # type: ignore[attr-defined]
            log_context.add(workspace_id=membership.workspace_id)
            return None
        match = request.resolver_match
        if (
            match is not None
            and match.namespaces
            and match.namespaces[0] in (NAMESPACES_WITHOUT_WORKSPACE)
        ):
            return None
        return render(request, "accounts/no_workspace.html", status=403)


def current_workspace(request: HttpRequest) -> Workspace:
    """Return the request's workspace; WorkspaceMiddleware has checked that there is one."""
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        # A view reached without the middleware, or a user without a
        # workspace on a page that needs one: nothing of a workspace is shown.
        raise Http404("No workspace.")
    return cast(Workspace, workspace)


def workspace_campaigns(
    request: HttpRequest, queryset: QuerySet[Campaign] | None = None
) -> QuerySet[Campaign]:
    """Narrow `queryset` (all campaigns by default) to the request's workspace."""
    if queryset is None:
        queryset = Campaign.objects.all()
    return queryset.filter(workspace_id=current_workspace(request).pk)


def get_campaign(
    request: HttpRequest, pk: int, queryset: QuerySet[Campaign] | None = None
) -> Campaign:
    """Return the campaign `pk` of the request's workspace, or raise Http404."""
    campaign = workspace_campaigns(request, queryset).filter(pk=pk).first()
    if campaign is None:
        raise Http404("No campaign matches the given query.")
    return campaign


async def aget_campaign(
    request: HttpRequest, pk: int, queryset: QuerySet[Campaign] | None = None
) -> Campaign:
    """Return the campaign `pk` of the request's workspace, or raise Http404 (async)."""
    campaign = await workspace_campaigns(request, queryset).filter(pk=pk).afirst()
    if campaign is None:
        raise Http404("No campaign matches the given query.")
    return campaign


def owner_required[View: Callable[..., HttpResponse]](view: View) -> View:
    """Refuse the view, with a 403 page, to a member who is not an owner of the workspace."""

    @wraps(view)
    def check(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = getattr(request, "membership", None)
        if membership is None or not membership.is_owner:
            return render(request, "accounts/owner_required.html", status=403)
        return view(request, *args, **kwargs)

    return cast(View, check)
