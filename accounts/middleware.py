"""Sign-in for every view, with 401 rather than a redirect for event streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import middleware
from django.http import HttpRequest, HttpResponse


def unauthorized_without_login[View: Callable[..., Any]](view: View) -> View:
    """Mark a view to return 401 to a request without a signed-in user.

    For views that a browser does not navigate to, such as event streams,
    where a redirect to the sign-in page would only be retried.
    """
    view.login_required_status = 401  # type: ignore[attr-defined]
    return view


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, with 401 for views marked unauthorized_without_login."""

    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponse:
        if getattr(view_func, "login_required_status", None) == 401:
            return HttpResponse(
                "Sign in first.\n", status=401, content_type="text/plain; charset=utf-8"
            )
        response: HttpResponse = super().handle_no_permission(request, view_func)
        return response
