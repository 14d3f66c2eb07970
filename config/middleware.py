"""Middleware of the project as a whole."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

# Every page that django.views.debug renders with DEBUG on (the traceback and
# "not found" pages) carries this tag; the app's own templates do not.
DEBUG_PAGE_MARKER = b'<meta name="robots" content="NONE,NOARCHIVE">'


class DebugPagesWithoutCSPMiddleware(MiddlewareMixin):
    """With DEBUG on, serve Django's error pages without a Content-Security-Policy.

    Django 6.1 renders its traceback and "not found" pages with inline styles,
    scripts and onclick handlers that carry no nonce, so the app's policy
    would leave them unstyled and their buttons dead. With DEBUG off this
    middleware does nothing: Django's error pages then have no inline code,
    or a nonce (the CSRF failure page), and templates/400.html is the app's
    own. MiddlewareMixin keeps the middleware usable by the async views.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            settings.DEBUG
            and response.status_code >= 400
            and not response.streaming
            and DEBUG_PAGE_MARKER in getattr(response, "content", b"")
        ):
            # ContentSecurityPolicyMiddleware sends no header for an empty
            # configuration; django.views.decorators.csp sets the same attribute.
            response._csp_config = {}  # type: ignore[attr-defined]
        return response
