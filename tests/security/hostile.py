"""Names, emails and other user content that try to break out of their HTML context.

`make_hostile(payload)` stores a campaign whose user content is the payload
wherever a page or a live update shows user content, and `assert_shown_escaped`
checks that a rendered page shows that content as text and runs none of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, Recipient
from imports.models import ImportIssue, RecipientImport
from suppressions.models import Suppression, SuppressionReason, suppress
from tests.factories import MESSAGE_CONTENT, operator_workspace
from tests.outcomes import set_outcome

# Names can contain anything: these try to start a script, to leave an
# attribute or a textarea, to look like template code, to be escaped twice,
# and to split a server-sent event with blank lines.
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}",
    "'-alert(1)-' x",
    "</textarea><svg onload=alert(1)>",
    "&lt;b&gt;escaped once&lt;/b&gt;",
    "Ada\n\nevent: x\ndata: <b>bold</b>",
]
PAYLOAD_IDS = ["script", "attribute", "template", "quote", "textarea", "entities", "newlines"]

# A valid email address with the specials that its local part may contain.
SPECIAL_EMAIL = "a&b'c{{7*7}}@example.com"


@dataclass
class Hostile:
    """The stored objects whose user content is `payload`."""

    payload: str
    campaign: Campaign
    # Named `payload`, with SPECIAL_EMAIL; failed with `payload` as its reason.
    recipient: Recipient
    # Named "Plain", with the payload inside an email address that no form
    # would accept, as a row written before a validation rule existed.
    stored_email: Recipient
    suppression: Suppression
    # A completed import of a file named `payload` whose report lists one row of it.
    finished_import: RecipientImport
    # An upload that waits for its mapping, with `payload` as a column title and a value.
    mapping_import: RecipientImport


def make_hostile(payload: str, import_files_dir: Path) -> Hostile:
    """Store the objects of `Hostile`, in a campaign named `payload`, and rename the
    operator's workspace to `payload`."""
    campaign = Campaign.objects.create(
        workspace=operator_workspace(),
        name=payload,
        email_html="<p>Hi {{ name }}</p>",
        **MESSAGE_CONTENT,
    )
    recipient = Recipient.objects.create(campaign=campaign, name=payload, email=SPECIAL_EMAIL)
    assert set_outcome(recipient, Recipient.Status.FAILED, payload)
    recipient.refresh_from_db()
    stored_email = Recipient.objects.create(
        campaign=campaign, name="Plain", email=f"x{payload}@example.com"
    )

    suppression, _created = suppress(
        email=SPECIAL_EMAIL,
        reason=SuppressionReason.UNSUBSCRIBED,
        campaign_id=campaign.pk,
        workspace_id=operator_workspace().pk,
    )

    finished_import = RecipientImport.objects.create(
        campaign=campaign,
        status=RecipientImport.Status.COMPLETED,
        file_name=payload,
        stored_name=f"{uuid.uuid4().hex}.csv",
        file_size=100,
        encoding="utf-8",
        delimiter=",",
        email_column=1,
        phone_region="US",
        rows_read=1,
        rows_invalid=1,
        finished_at=timezone.now(),
    )
    ImportIssue.objects.create(
        recipient_import=finished_import,
        line=2,
        kind=ImportIssue.Kind.INVALID,
        name=payload,
        email=payload,
        phone=payload,
        reason=payload,
    )

    stored_name = f"{uuid.uuid4().hex}.csv"
    (import_files_dir / stored_name).write_text(f"Name,Email\nx,{SPECIAL_EMAIL}\n")
    mapping_import = RecipientImport.objects.create(
        campaign=campaign,
        status=RecipientImport.Status.MAPPING,
        file_name=payload,
        stored_name=stored_name,
        file_size=100,
        encoding="utf-8",
        delimiter=",",
        column_titles=[payload, "Email"],
        sample_rows=[[payload, SPECIAL_EMAIL]],
        phone_region="US",
    )

    # Every page's header shows the workspace's name.
    Workspace.objects.filter(pk=campaign.workspace_id).update(name=payload)

    return Hostile(
        payload, campaign, recipient, stored_email, suppression, finished_import, mapping_import
    )


class RenderedContent(HTMLParser):
    """What a browser makes of a page: its elements, and the text that it shows.

    `texts` holds text nodes and attribute values with character references
    decoded, which is what a user sees or a form submits.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.texts.extend(value for _name, value in attrs if value)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


# Characters that HTML escaping replaces: a string that contains one and
# appears verbatim in a page's source was not escaped there.
ESCAPED_CHARACTERS = set("<>&\"'")


def assert_shown_escaped(html: str, shown: list[str]) -> None:
    """Assert that `html` shows every string in `shown` as text, and runs no injected code.

    Each string must appear decoded in a text node or an attribute value, and
    nowhere verbatim in the source when escaping would change it. No element
    may carry an event handler attribute or be an inline script, and no
    element may come from a payload, such as `<img src=x>`.
    """
    for text in shown:
        if ESCAPED_CHARACTERS & set(text):
            assert text not in html, f"{text!r} appears unescaped in the page's source"
    content = RenderedContent()
    content.feed(html)
    content.close()
    for tag, attrs in content.elements:
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> has event handlers {handlers}"
        if tag == "script":
            assert attrs.get("src"), f"inline <script> with {attrs}"
        assert not (tag == "img" and attrs.get("src") == "x"), "an <img> from a payload"
    for text in shown:
        assert any(text in chunk for chunk in content.texts), f"{text!r} is not shown as text"
