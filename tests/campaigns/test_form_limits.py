"""The campaign form at its largest: MAX_RECIPIENT_ROWS rows of long values fit the body limits."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from tests.factories import MESSAGE_CONTENT, operator_workspace

pytestmark = pytest.mark.django_db

# Django's defaults, which a full form exceeds.
DJANGO_DEFAULT_MAX_FIELDS = 1000
DJANGO_DEFAULT_MAX_BYTES = 2_621_440

# 200 characters, the most a name takes, that percent-encode to 9 and 12 bytes each.
LONG_NAME = "名😀" * 100
KEPT_ROWS = 10
# An HTML body of about 120 KB, as a designed newsletter can have.
LONG_HTML = "<p>Dear {{ name }},</p>" + "<p>Here is our news.</p>" * 5000

# A field of a recipient row, such as recipients-12-email; group 1 is the row's index.
ROW_FIELD = re.compile(r"recipients-(\d+)-\w+")


class PostedFields(HTMLParser):
    """Collect the fields that a browser posts for the form with id `form_id`.

    Every named input, textarea and select inside the form counts, except
    unchecked checkboxes, which browsers leave out, and fields inside a
    <template>, which are not part of the document. Values are the rendered
    ones; the test replaces those that a user would type.
    """

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.in_form = False
        self.template_depth = 0
        self.textarea: str | None = None
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("id") == self.form_id:
            self.in_form = True
        elif tag == "template":
            self.template_depth += 1
        if not self.in_form or self.template_depth or "name" not in attributes:
            return
        if tag == "input":
            if attributes.get("type") == "checkbox" and "checked" not in attributes:
                return
            self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "textarea":
            self.textarea = attributes["name"]
            self.fields.append((self.textarea, ""))
        elif tag == "select":
            self.fields.append((attributes["name"], ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "template":
            self.template_depth -= 1
        elif tag == "textarea" and self.textarea is not None:
            # Browsers drop the newline that starts a textarea's content.
            name, value = self.fields[-1]
            self.fields[-1] = (name, value.removeprefix("\n"))
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)


def typed_value(name: str, value: str) -> str:
    """Return what the test types into field `name`, or its rendered `value`."""
    if name == "email_html":
        return LONG_HTML
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "recipients":
        return value
    index, field = int(parts[1]), parts[2]
    if field == "name":
        return LONG_NAME
    if field == "email":
        # 117 characters with an internationalised domain, unique per row.
        return f"{'x' * 60}{index:04d}@{'例え例え例え例え例え.' * 4}example"
    return value


def test_edit_form_with_max_rows_fits_limits(client: Client) -> None:
    rows = settings.MAX_RECIPIENT_ROWS
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Largest form", **MESSAGE_CONTENT
    )
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, name=f"Person {n}", email=f"person{n}@example.com")
        for n in range(rows)
    )
    edit_url = reverse("campaigns:edit", args=[campaign.pk])
    page = client.get(edit_url)
    assert page.status_code == 200
    parser = PostedFields("campaign-form")
    parser.feed(page.content.decode())

    # The first rows get new long names. The others are marked for deletion,
    # as Remove does on a saved row, so they post every field a row has.
    fields = [(name, typed_value(name, value)) for name, value in parser.fields]
    deletes = {f"recipients-{index}-DELETE" for index in range(KEPT_ROWS, rows)}
    fields += [(name, "on") for name in sorted(deletes)]
    body = urlencode(fields)

    # A row should post at most the fields that the settings count on, and
    # the form should need more than Django's default limits and fit the app's.
    per_row = Counter(match.group(1) for name, _ in fields if (match := ROW_FIELD.fullmatch(name)))
    assert len(per_row) == rows
    assert max(per_row.values()) == settings.RECIPIENT_ROW_FIELDS
    assert DJANGO_DEFAULT_MAX_FIELDS < len(fields) <= settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert DJANGO_DEFAULT_MAX_BYTES < len(body) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = client.post(edit_url, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 303, response.content.decode()[:2000]
    kept = list(campaign.recipients.order_by("id").values_list("name", flat=True))
    assert kept == [LONG_NAME] * KEPT_ROWS
    campaign.refresh_from_db()
    assert campaign.email_html == LONG_HTML
    assert campaign.email_text == MESSAGE_CONTENT["email_text"]
