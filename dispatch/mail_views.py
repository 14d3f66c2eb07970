"""Development-only pages that show the messages the SMTP sink captured.

Both pages return 404 unless DEBUG is on, because the captured messages are
personal data and the page has no login.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dispatch.mailsink import list_messages, read_message

# Newest messages listed on the page; older files stay on disk.
MAX_LISTED_MESSAGES = 200

# Inside the preview frame: no scripts (the sandbox attribute), and no
# requests for remote images, fonts or styles, which would tell a tracker
# that the message was opened.
PREVIEW_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; font-src data:"
)


def mail_pages_enabled() -> bool:
    return bool(settings.DEBUG)


def _require_debug() -> None:
    if not mail_pages_enabled():
        raise Http404("The captured mail pages exist only with DEBUG on.")


def mail_index(request: HttpRequest) -> HttpResponse:
    _require_debug()
    directory = Path(settings.MAIL_SINK_DIR)
    messages = list_messages(directory, MAX_LISTED_MESSAGES)
    return render(
        request,
        "dispatch/dev_mail_index.html",
        {"captured": messages, "directory": directory, "limit": MAX_LISTED_MESSAGES},
    )


def mail_detail(request: HttpRequest, name: str) -> HttpResponse:
    _require_debug()
    captured = read_message(Path(settings.MAIL_SINK_DIR), name)
    if captured is None:
        raise Http404(f"No captured message named {name!r}.")
    html = captured.html
    preview = ""
    if html:
        preview = (
            f'<meta http-equiv="Content-Security-Policy" '
            f'content="{PREVIEW_CONTENT_SECURITY_POLICY}">{html}'
        )
    return render(
        request,
        "dispatch/dev_mail_detail.html",
        {"captured": captured, "text": captured.text, "html": html, "preview": preview},
    )
