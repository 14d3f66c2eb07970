"""The API's URLs: the ninja operations and the OpenAPI schema under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from api import endpoints  # noqa: F401  (registers the operations on `api`)
from api.ninja_api import api


def _without_session_login(
    patterns: list[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    """Mark every API view as exempt from LoginRequiredMiddleware.

    The operations authenticate with bearer tokens (api/auth.py), and the
    schema is public, so no API URL redirects to the sign-in page.
    """
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback.login_required = False  # type: ignore[attr-defined]
    return patterns


patterns, app_name, namespace = api.urls
urlpatterns = _without_session_login(patterns)
