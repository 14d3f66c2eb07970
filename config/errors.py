"""The 400 page: what the server rejected, and what to do about it.

Django calls `bad_request` (handler400 in config/urls.py) when a request
breaks a request body limit (DATA_UPLOAD_MAX_MEMORY_SIZE,
DATA_UPLOAD_MAX_NUMBER_FIELDS, DATA_UPLOAD_MAX_NUMBER_FILES) or is otherwise
malformed, such as one with a Host header outside ALLOWED_HOSTS. With DEBUG
on, Django shows its technical page instead.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat

# Media types with which a browser, or Turbo, requests a page.
HTML_TYPES = {("text", "html"), ("application", "xhtml+xml")}


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Render templates/400.html for a browser, and one line of plain text for other clients."""
    reason = rejection_reason(exception)
    if _accepts_html(request):
        return render(request, "400.html", {"reason": reason}, status=400)
    return HttpResponseBadRequest(
        f"Bad Request: {reason}\n", content_type="text/plain; charset=utf-8"
    )


def rejection_reason(exception: Exception) -> str:
    """Return a sentence that names the limit that the request broke, and what to do next.

    The exception's own message is not shown: it may repeat request data.
    """
    if isinstance(exception, RequestDataTooBig):
        return (
            f"The form is larger than the {filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)} "
            "that this server accepts. Shorten the message, or send fewer recipient rows and "
            "import the rest from a CSV file."
        )
    if isinstance(exception, TooManyFieldsSent):
        return (
            f"The form has more than the {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields that "
            f"this server accepts. A campaign form takes at most {settings.MAX_RECIPIENT_ROWS:,} "
            "recipient rows; import larger lists from a CSV file."
        )
    if isinstance(exception, TooManyFilesSent):
        return (
            f"The form has more than the {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files that "
            "this server accepts. Upload one file at a time."
        )
    return "The server could not read this request. Check the address, then try again."


def _accepts_html(request: HttpRequest) -> bool:
    """Return whether the Accept header names HTML itself; */* alone is not enough.

    `accepted_types` leaves out the types with a quality of 0.
    """
    return any(
        (media_type.main_type, media_type.sub_type) in HTML_TYPES
        for media_type in request.accepted_types
    )
