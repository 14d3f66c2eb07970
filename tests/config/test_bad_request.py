"""Requests over the body limits get the app's 400 page, or one line of text."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

pytestmark = pytest.mark.django_db

NEW_URL = reverse("campaigns:create")
URLENCODED = "application/x-www-form-urlencoded"
# What Turbo sends with a form submission.
TURBO_ACCEPT = "text/vnd.turbo-stream.html, text/html, application/xhtml+xml"


def too_many_fields(settings: Settings) -> str:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    return urlencode({f"field{n}": "x" for n in range(21)})


def too_many_bytes(settings: Settings) -> str:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    return urlencode({"name": "x" * 1001})


LIMITS = {
    "fields": (too_many_fields, "The form has more than the 20 fields that this server accepts."),
    "bytes": (
        too_many_bytes,
        "The form is larger than the 1000\xa0bytes that this server accepts.",
    ),
}


@pytest.mark.parametrize("limit", LIMITS)
def test_over_limit_gets_400_page(client: Client, settings: Settings, limit: str) -> None:
    build_body, reason = LIMITS[limit]
    body = build_body(settings)

    response = client.post(NEW_URL, body, content_type=URLENCODED, headers={"Accept": TURBO_ACCEPT})

    assert response.status_code == 400
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response.templates[0].name == "400.html"
    html = response.content.decode()
    assert "The server rejected this request" in html
    assert reason in html
    # The page is the app's own, under the same policy as every page.
    assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("accept", ["text/event-stream", "application/json", "*/*", None])
def test_over_limit_gets_text_without_html_accept(
    client: Client, settings: Settings, limit: str, accept: str | None
) -> None:
    build_body, reason = LIMITS[limit]
    body = build_body(settings)
    headers = {} if accept is None else {"Accept": accept}

    response = client.post(NEW_URL, body, content_type=URLENCODED, headers=headers)

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert text.startswith(f"Bad Request: {reason}")
    assert text.count("\n") == 1
    assert "<" not in text


def test_too_many_query_parameters_get_400(client: Client, settings: Settings) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    query = urlencode({f"q{n}": "x" for n in range(21)})

    # The suppression list reads its search parameter from the query.
    response = client.get(
        f"{reverse('suppressions:index')}?{query}", headers={"Accept": "text/html"}
    )

    assert response.status_code == 400
    assert "The form has more than the 20 fields" in response.content.decode()


def test_other_bad_request_does_not_echo_it(client: Client) -> None:
    # A Host header outside ALLOWED_HOSTS is a SuspiciousOperation too.
    response = client.get("/", headers={"Host": "evil<b>.example", "Accept": "text/html"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "The server could not read this request." in html
    assert "evil" not in html


def test_form_within_limits_is_not_rejected(client: Client, settings: Settings) -> None:
    # The same limits that reject the requests above admit a form just under them.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = urlencode({"name": "x" * 900})

    response = client.post(NEW_URL, body, content_type=URLENCODED, headers={"Accept": "text/html"})

    # The form is incomplete, so the page shows its errors.
    assert response.status_code == 422
