"""Pages and live updates need no inline code, so the strict Content-Security-Policy holds.

The policy allows scripts and styles from this app's origin and elements that
carry the page's nonce. A page may have neither inline scripts, style
elements, style attributes nor event handler attributes, and the partials that
live updates render outside any request, with no nonce, must need none. The
browser test (tests/system/test_content_security_policy.py) checks the same
pages in Chromium.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from dispatch.mailsink import store_message
from imports.rendering import progress_stream
from live import broadcasts
from live.index_feed import summary_stream
from tests.outcomes import set_outcome
from tests.security.hostile import RenderedContent, make_hostile
from tests.security.test_escaping_pages import captured_message

pytestmark = pytest.mark.django_db

NONCE_META = re.compile(r'<meta name="csp-nonce" content="([^"]*)">')


def directives(response: Any) -> dict[str, list[str]]:
    """Parse the response's Content-Security-Policy header into its directives."""
    policy = response["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def assert_no_inline_code(html: str) -> None:
    content = RenderedContent()
    content.feed(html)
    content.close()
    for tag, attrs in content.elements:
        assert tag != "style", "a <style> element"
        assert "style" not in attrs, f"<{tag}> has a style attribute"
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> has event handlers {handlers}"
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), f"<script> with {attrs}"
        for name in ("href", "src", "action", "formaction"):
            assert not (attrs.get(name) or "").lower().startswith("javascript:"), (tag, attrs)


@pytest.fixture
def site(settings: Any, tmp_path: Path) -> dict[str, str]:
    """URLs of every kind of page, with data to show: name → path."""
    settings.DEBUG = True  # for /dev/mail/
    settings.MAIL_SINK_DIR = tmp_path / "mail"
    imports_dir = tmp_path / "imports"
    imports_dir.mkdir()
    settings.IMPORT_FILES_DIR = imports_dir
    hostile = make_hostile("Spring <launch>", imports_dir)
    campaign = hostile.campaign
    mail = store_message(
        tmp_path / "mail", "shop@example.com", ["ada@example.com"], captured_message("Hi")
    )
    return {
        "index": reverse("campaigns:index"),
        "new": reverse("campaigns:create"),
        "campaign": campaign.get_absolute_url(),
        "edit": reverse("campaigns:edit", args=[campaign.pk]),
        "preview": reverse("campaigns:preview", args=[campaign.pk]),
        "recipient-new": reverse("campaigns:recipient_create", args=[campaign.pk]),
        "import-new": reverse("imports:new", args=[campaign.pk]),
        "import-mapping": hostile.mapping_import.get_absolute_url(),
        "import-report": hostile.finished_import.get_absolute_url(),
        "suppressions": reverse("suppressions:index"),
        "workspace": reverse("accounts:workspace"),
        "workspace-new": reverse("accounts:workspace_create"),
        "api-tokens": reverse("accounts:api_tokens"),
        "api-docs": reverse("api_docs"),
        "dev-mail": reverse("dev_mail:index"),
        "dev-mail-detail": reverse("dev_mail:detail", args=[mail.stem]),
    }


PAGES = [
    "index",
    "new",
    "campaign",
    "edit",
    "preview",
    "recipient-new",
    "import-new",
    "import-mapping",
    "import-report",
    "suppressions",
    "workspace",
    "workspace-new",
    "api-tokens",
    "api-docs",
    "dev-mail",
    "dev-mail-detail",
]


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_under_policy(client: Client, site: dict[str, str], page: str) -> None:
    response = client.get(site[page])

    assert response.status_code == 200
    policy = directives(response)
    nonces = [value for value in policy["script-src"] if value.startswith("'nonce-")]
    assert policy["script-src"] == ["'self'", *nonces]
    assert len(nonces) == 1
    assert policy["style-src"] == ["'self'", nonces[0]]
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    html = response.content.decode()
    # Turbo reads the nonce for its progress bar's <style> from this tag.
    meta = NONCE_META.search(html)
    assert meta is not None
    assert f"'nonce-{meta.group(1)}'" == nonces[0]
    assert_no_inline_code(html)


def test_nonce_changes_per_response(client: Client) -> None:
    first = directives(client.get(reverse("campaigns:index")))["script-src"]
    second = directives(client.get(reverse("campaigns:index")))["script-src"]

    assert first != second


def test_live_partials_need_no_nonce(settings: Any, tmp_path: Path) -> None:
    imports_dir = tmp_path / "imports"
    imports_dir.mkdir()
    hostile = make_hostile("Spring", imports_dir)
    campaign = Campaign.objects.with_progress().get(pk=hostile.campaign.pk)
    sent = Recipient.objects.create(campaign=campaign, name="Grace", email="grace@example.com")
    assert set_outcome(sent, Recipient.Status.SENT)
    sent.refresh_from_db()

    partials = [
        broadcasts.header_stream(campaign),
        broadcasts.recipient_stream(hostile.recipient),
        broadcasts.recipient_stream(sent),
        summary_stream(campaign),
        progress_stream(hostile.finished_import),
        progress_stream(hostile.mapping_import),
    ]

    for html in partials:
        assert "<turbo-stream" in html
        assert "nonce" not in html
        assert_no_inline_code(html)


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_debug_error_pages_skip_policy(client: Client, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    missing = reverse("campaigns:detail", args=[987654321])

    not_found = client.get(missing)
    page = client.get(reverse("campaigns:index"))

    assert not_found.status_code == 404
    # Django 6.1 sends its technical pages, whose inline styles have no nonce,
    # without a policy, so they stay usable in development. The app's own
    # pages keep the policy.
    assert ("Content-Security-Policy" in not_found) is not debug
    assert "Content-Security-Policy" in page
