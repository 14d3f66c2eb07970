"""A message's HTML part served as a document of its own, for a sandboxed <iframe src>.

The preview page and the captured-mail page show an email's HTML in a frame.
A frame filled through `srcdoc` would inherit the page's Content-Security-
Policy, which blocks the inline styles that email HTML relies on. So the frame
loads the HTML from a URL that serves it under the policy below instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpResponse
from django.utils.csp import CSP
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override

# The message's own CSS (style attributes and <style> elements) applies.
# Scripts, forms, plugins and every request to another origin are blocked:
# a remote image or font would tell a tracker that the message was opened.
# `sandbox` gives the document an opaque origin even when a page frames it
# without the iframe's sandbox attribute. Only this app's pages may frame it.
MESSAGE_FRAME_CSP: dict[str, Any] = {
    "default-src": [CSP.NONE],
    "img-src": ["data:", "cid:"],
    "style-src": [CSP.UNSAFE_INLINE],
    "font-src": ["data:"],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.NONE],
    "frame-ancestors": [CSP.SELF],
    "sandbox": True,
}


def message_frame(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve the view's response with MESSAGE_FRAME_CSP, framable by this app's pages only."""

    @wraps(view)
    @xframe_options_sameorigin
    @csp_override(MESSAGE_FRAME_CSP)
    def framed(*args: Any, **kwargs: Any) -> HttpResponse:
        response = view(*args, **kwargs)
        # The message contains personal data; nothing should keep a copy.
        response["Cache-Control"] = "no-store"
        return response

    return framed


def message_html_response(html: str) -> HttpResponse:
    return HttpResponse(html, content_type="text/html; charset=utf-8")
