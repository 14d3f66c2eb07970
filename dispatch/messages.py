"""The message one recipient receives: its channel, its rendered content and its headers.

The dispatch engine and the test send both build messages here, so a test
send shows exactly what recipients get, unsubscribe link included.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

from django.conf import settings

from campaigns.content import missing_content, render_email, render_sms
from dispatch.providers.base import Channel, OutboundMessage
from suppressions.tokens import unsubscribe_urls

if TYPE_CHECKING:
    from campaigns.models import Campaign

EMAIL: Channel = "email"
SMS: Channel = "sms"

# The last </body> of an HTML body, where the unsubscribe footer goes.
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class EmptyMessage(ValueError):
    """A part of the message that renders blank for one recipient.

    For example, a subject of only `{{ phone }}` for a recipient without a
    phone number. `str(exc)` names the part, such as "the email subject is
    empty for this recipient".
    """


@dataclass(frozen=True)
class MessageContent:
    """A campaign's content as it was when a worker loop started.

    Loops read it once rather than once per recipient. The content cannot
    change while the campaign is processing, because only a pending
    campaign can be edited.
    """

    campaign_id: int
    workspace_id: int
    email_subject: str
    email_text: str
    email_html: str
    sms_text: str
    prefer_sms: bool

    @classmethod
    def of(cls, campaign: Campaign) -> MessageContent:
        return cls(
            campaign_id=campaign.pk,
            workspace_id=campaign.workspace_id,
            email_subject=campaign.email_subject,
            email_text=campaign.email_text,
            email_html=campaign.email_html,
            sms_text=campaign.sms_text,
            prefer_sms=campaign.prefer_sms,
        )

    def missing(self, channel: Channel) -> str:
        """Return what the content lacks to be sent on `channel`, or "" when nothing."""
        return missing_content(self, channel)


def choose_channel(email: str, phone: str, prefer_sms: bool) -> Channel:
    """Email when the recipient has an email address, unless SMS is preferred and
    it has a phone number too; SMS otherwise.

    `claims.claim_batch` makes the same choice in SQL when it claims a
    recipient; the two must agree.
    """
    if email and not (prefer_sms and phone):
        return EMAIL
    return SMS


def message_id(campaign_id: int, local_part: str) -> str:
    """Return a Message-ID in the sender's domain, such as
    `<campaign-7-recipient-42@mail.example.com>`."""
    return f"<campaign-{campaign_id}-{local_part}@{_sender_domain(settings.DEFAULT_FROM_EMAIL)}>"


@functools.lru_cache(maxsize=8)
def _sender_domain(from_email: str) -> str:
    # Parsing the address costs more than the rest of the Message-ID, and
    # every email of a dispatch has the same sender.
    return parseaddr(from_email)[1].rpartition("@")[2] or "localhost"


def build_message(
    content: MessageContent,
    fields: dict[str, str],
    *,
    channel: Channel,
    to: str,
    recipient_id: int,
    message_id_part: str = "",
) -> OutboundMessage:
    """Render `content` for one recipient on `channel`.

    `fields` are the recipient's template fields (campaigns.content.
    recipient_fields); `unsubscribe_url` is added to them, signed for `to`.
    An email gets a Message-ID that stays the same on every attempt. Test
    sends pass `message_id_part` to replace its `recipient-<id>` part. It
    also gets the `List-Unsubscribe` and `List-Unsubscribe-Post` headers of
    RFC 8058, and an unsubscribe footer in each body that lacks the link.

    Raises ValidationError when stored content does not compile, and
    EmptyMessage when the subject, the plain-text body or the SMS text
    renders blank for this recipient. An HTML body that renders blank is
    left out, and the email is sent as plain text.
    """
    page_url, one_click_url = unsubscribe_urls(
        content.campaign_id, recipient_id, to, workspace_id=content.workspace_id
    )
    fields = {**fields, "unsubscribe_url": page_url}
    if channel == SMS:
        sms_text = render_sms(content, fields)
        if not sms_text.strip():
            raise EmptyMessage("the SMS text is empty for this recipient")
        return OutboundMessage(channel=SMS, to=to, text=sms_text)

    subject, text, html_body = render_email(content, fields)
    if not subject.strip():
        raise EmptyMessage("the email subject is empty for this recipient")
    if not text.strip():
        raise EmptyMessage("the email text is empty for this recipient")
    if not html_body.strip():
        html_body = ""
    if page_url not in text:
        text = f"{text.rstrip()}\n\n-- \nTo stop receiving these messages: {page_url}\n"
    if html_body and html.escape(page_url) not in html_body and page_url not in html_body:
        html_body = _add_html_footer(html_body, page_url)
    headers = {
        "Message-ID": message_id(
            content.campaign_id, message_id_part or f"recipient-{recipient_id}"
        ),
        # An HTTPS (or, in development, HTTP) URI only: RFC 8058 one-click
        # needs one, and a mailto: URI would ask for a mailbox the app lacks.
        "List-Unsubscribe": f"<{one_click_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return OutboundMessage(
        channel=EMAIL, to=to, subject=subject, text=text, html=html_body, headers=headers
    )


def _add_html_footer(body: str, page_url: str) -> str:
    footer = (
        f'<p><a href="{html.escape(page_url)}">Unsubscribe</a> '
        "to stop receiving these messages.</p>"
    )
    matches = list(_BODY_END.finditer(body))
    if not matches:
        return f"{body}\n{footer}\n"
    end = matches[-1].start()
    return f"{body[:end]}{footer}\n{body[end:]}"
