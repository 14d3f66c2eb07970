"""Sign-in with the throttled form, and the workspace switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.forms import ThrottledAuthenticationForm
from accounts.workspaces import switch_workspace
from campaigns.views import see_other

# Ids are PostgreSQL bigints; 18 digits always fit.
MAX_ID_DIGITS = 18


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Make the posted workspace the session's workspace, then show its campaigns.

    404 for a workspace that the user does not belong to, as for another
    workspace's campaign.
    """
    value = request.POST.get("workspace", "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_ID_DIGITS:
        raise Http404("No workspace matches the given query.")
    membership = switch_workspace(request, int(value))
    if membership is None:
        raise Http404("No workspace matches the given query.")
    messages.success(request, f"You are working in “{membership.workspace.name}”.")
    return see_other(reverse("campaigns:index"))
