"""Every page shows hostile names, emails and other user content as text.

Each case renders one page for one payload (tests/security/hostile.py) and
checks that the page shows the payload, and SPECIAL_EMAIL where the page
lists addresses, without running any of it. The CSV export is not HTML and
is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from dispatch.mailsink import store_message
from suppressions.tokens import make_token
from tests.security.hostile import (
    PAYLOAD_IDS,
    PAYLOADS,
    SPECIAL_EMAIL,
    Hostile,
    assert_shown_escaped,
    make_hostile,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Page:
    """A page to render for a Hostile, and the strings of it that the page shows."""

    url: Callable[[Hostile], str]
    shows: Callable[[Hostile], list[str]]


def shows_payload(hostile: Hostile) -> list[str]:
    return [hostile.payload]


def shows_payload_and_email(hostile: Hostile) -> list[str]:
    return [hostile.payload, SPECIAL_EMAIL]


def shows_every_recipient(hostile: Hostile) -> list[str]:
    """The payload, SPECIAL_EMAIL, and the email address with the payload, as stored."""
    return [hostile.payload, SPECIAL_EMAIL, hostile.stored_email.email]


def shows_email(hostile: Hostile) -> list[str]:
    return [SPECIAL_EMAIL]


def campaign_url(name: str) -> Callable[[Hostile], str]:
    return lambda hostile: reverse(f"campaigns:{name}", args=[hostile.campaign.pk])


def recipient_url(name: str) -> Callable[[Hostile], str]:
    return lambda hostile: reverse(
        f"campaigns:{name}", args=[hostile.campaign.pk, hostile.recipient.pk]
    )


def import_url(hostile_import: str) -> Callable[[Hostile], str]:
    def url(hostile: Hostile) -> str:
        recipient_import = getattr(hostile, hostile_import)
        return reverse("imports:detail", args=[hostile.campaign.pk, recipient_import.pk])

    return url


PAGES = {
    "index": Page(lambda hostile: reverse("campaigns:index"), shows_payload),
    "campaign": Page(campaign_url("detail"), shows_every_recipient),
    "campaign-search": Page(
        lambda hostile: f"{reverse('campaigns:detail', args=[hostile.campaign.pk])}?q=%3Cb%3E",
        shows_payload,
    ),
    "campaign-edit": Page(campaign_url("edit"), shows_every_recipient),
    "campaign-delete": Page(campaign_url("delete"), shows_payload),
    "recipient-edit": Page(recipient_url("recipient_edit"), shows_payload_and_email),
    "recipient-delete": Page(recipient_url("recipient_delete"), shows_payload_and_email),
    "attempts": Page(recipient_url("attempts"), shows_payload),
    "preview": Page(
        lambda hostile: (
            f"{reverse('campaigns:preview', args=[hostile.campaign.pk])}"
            f"?recipient={hostile.recipient.pk}"
        ),
        shows_payload_and_email,
    ),
    "preview-frame": Page(
        lambda hostile: (
            f"{reverse('campaigns:preview_html', args=[hostile.campaign.pk])}"
            f"?recipient={hostile.recipient.pk}"
        ),
        shows_payload,
    ),
    "suppressions": Page(lambda hostile: reverse("suppressions:index"), shows_payload_and_email),
    "suppression-delete": Page(
        lambda hostile: reverse("suppressions:delete", args=[hostile.suppression.pk]),
        shows_email,
    ),
    "workspace": Page(lambda hostile: reverse("accounts:workspace"), shows_payload),
    "import-report": Page(import_url("finished_import"), shows_payload),
    "import-mapping": Page(import_url("mapping_import"), shows_payload_and_email),
    "unsubscribe": Page(
        lambda hostile: reverse(
            "suppressions:unsubscribe",
            args=[
                make_token(
                    hostile.campaign.pk,
                    hostile.recipient.pk,
                    SPECIAL_EMAIL,
                    workspace_id=hostile.campaign.workspace_id,
                )
            ],
        ),
        shows_email,
    ),
}


@pytest.fixture
def import_files_dir(settings: Any, tmp_path: Path) -> Path:
    settings.IMPORT_FILES_DIR = tmp_path / "imports"
    settings.IMPORT_FILES_DIR.mkdir()
    return Path(settings.IMPORT_FILES_DIR)


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("page", PAGES)
def test_page_shows_content_escaped(
    client: Client, import_files_dir: Path, settings: Any, page: str, payload: str
) -> None:
    hostile = make_hostile(payload, import_files_dir)
    case = PAGES[page]

    response = client.get(case.url(hostile))

    assert response.status_code == 200, response.content.decode()[:500]
    assert_shown_escaped(response.content.decode(), case.shows(hostile))


def captured_message(payload: str) -> bytes:
    """A message as the SMTP sink stores it, with the payload in headers and both bodies."""
    # Header values cannot contain line breaks.
    one_line = " ".join(payload.split())
    return (
        f"From: {one_line} <shop@example.com>\r\n"
        f"To: {SPECIAL_EMAIL}\r\n"
        f"Subject: {one_line}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n'
        "\r\n"
        "--b\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{payload}\r\n"
        "--b\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        f"<p>{payload}</p>\r\n"
        "--b--\r\n"
    ).encode()


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("page", ["index", "detail"])
def test_dev_mail_shows_content_escaped(
    client: Client, settings: Any, tmp_path: Path, page: str, payload: str
) -> None:
    settings.DEBUG = True
    settings.MAIL_SINK_DIR = tmp_path
    path = store_message(tmp_path, "shop@example.com", [SPECIAL_EMAIL], captured_message(payload))
    url = (
        reverse("dev_mail:index")
        if page == "index"
        else reverse("dev_mail:detail", args=[path.stem])
    )

    response = client.get(url)

    assert response.status_code == 200
    one_line = " ".join(payload.split())
    # The detail page shows the text part and the HTML part's source as text.
    shown = [one_line, SPECIAL_EMAIL] + ([payload, f"<p>{payload}</p>"] if page == "detail" else [])
    assert_shown_escaped(response.content.decode(), shown)
