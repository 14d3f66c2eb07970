"""Development-only pages that show the messages the SMTP sink captured.

Every page returns 404 unless DEBUG is on, because the captured messages are
personal data and the page has no login.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dispatch.mailsink import CapturedMessage, list_messages, read_message
from dispatch.message_frames import message_frame, message_html_response

# Newest messages listed on the page; older files stay on disk.
MAX_LISTED_MESSAGES = 200


def mail_pages_enabled() -> bool:
    return bool(settings.DEBUG)


def _require_debug() -> None:
    if not mail_pages_enabled():
        raise Http404("The captured mail pages exist only with DEBUG on.")


@require_GET
def mail_index(request: HttpRequest) -> HttpResponse:
    _require_debug()
    directory = Path(settings.MAIL_SINK_DIR)
    messages = list_messages(directory, MAX_LISTED_MESSAGES)
    return render(
        request,
        "dispatch/dev_mail_index.html",
        {"captured": messages, "directory": directory, "limit": MAX_LISTED_MESSAGES},
    )


@require_GET
def mail_detail(request: HttpRequest, name: str) -> HttpResponse:
    _require_debug()
    captured = _captured_or_404(name)
    return render(
        request,
        "dispatch/dev_mail_detail.html",
        {"captured": captured, "text": captured.text, "html": captured.html},
    )


@message_frame
@require_GET
def mail_html(request: HttpRequest, name: str) -> HttpResponse:
    """Serve the message's HTML part for the detail page's frame; 404 when it has none."""
    _require_debug()
    captured = _captured_or_404(name)
    if not captured.html:
        raise Http404(f"The captured message {name!r} has no HTML part.")
    return message_html_response(captured.html)


def _captured_or_404(name: str) -> CapturedMessage:
    captured = read_message(Path(settings.MAIL_SINK_DIR), name)
    if captured is None:
        raise Http404(f"No captured message named {name!r}.")
    return captured
