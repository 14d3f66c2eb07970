"""The email provider over real SMTP to an aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core import mail

from dispatch.providers import (
    Delivery,
    EmailBackendProvider,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from dispatch.providers.email import classify_email_error
from tests.servers import free_port
from tests.smtp import SMTP_BACKEND, RecordingHandler


def delivery(message: OutboundMessage | None) -> Delivery:
    return Delivery(
        campaign_id=3,
        recipient_id=14,
        attempt=1,
        name="Ada Lovelace",
        email="ada@example.com",
        phone_number="",
        idempotency_key="campaign-3-recipient-14",
        message=message,
    )


def email_message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "channel": "email",
        "to": "ada@example.com",
        "subject": "Spring sale for Ada",
        "text": "Hello Ada,\nour spring sale starts today.\n",
        "html": "<p>Hello <b>Ada</b>, our spring sale starts today.</p>",
        "headers": {
            "Message-ID": "<c3.r14@campaigns.example.com>",
            "List-Unsubscribe": "<https://campaigns.example.com/unsubscribe/abc/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def provider() -> EmailBackendProvider:
    return EmailBackendProvider(from_email="Shop <shop@example.com>", mailer="sink")


def parse(raw: bytes) -> EmailMessage:
    # SMTP carries CRLF line ends, which the comparisons below do not care about.
    parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_smtp_message_has_parts_and_headers(smtp_sink: RecordingHandler) -> None:
    message_id = provider().deliver(delivery(email_message()))

    assert message_id == "<c3.r14@campaigns.example.com>"
    assert len(smtp_sink.messages) == 1
    received = parse(smtp_sink.messages[0])
    assert received["Subject"] == "Spring sale for Ada"
    assert received["To"] == "ada@example.com"
    assert received["From"] == "Shop <shop@example.com>"
    assert received["Message-ID"] == "<c3.r14@campaigns.example.com>"
    assert received["List-Unsubscribe"] == "<https://campaigns.example.com/unsubscribe/abc/>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    text_part = received.get_body(preferencelist=("plain",))
    html_part = received.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    assert text_part.get_content() == "Hello Ada,\nour spring sale starts today.\n"
    assert html_part.get_content().strip() == (
        "<p>Hello <b>Ada</b>, our spring sale starts today.</p>"
    )


def test_smtp_text_only_message_is_plain(smtp_sink: RecordingHandler) -> None:
    provider().deliver(delivery(email_message(html="")))

    received = parse(smtp_sink.messages[0])
    assert received.get_content_type() == "text/plain"
    assert received.get_content() == "Hello Ada,\nour spring sale starts today.\n"


def test_message_id_defaults_to_idempotency_key(smtp_sink: RecordingHandler) -> None:
    message_id = provider().deliver(delivery(email_message(headers={})))

    assert message_id == "<campaign-3-recipient-14@example.com>"
    assert parse(smtp_sink.messages[0])["Message-ID"] == message_id


def header_lines(raw: bytes, name: bytes) -> list[bytes]:
    """The raw lines of header `name`: its first line and any folded continuation lines."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(name.lower() + b":"))
    end = start + 1
    while end < len(head) and head[end][:1] in (b" ", b"\t"):
        end += 1
    return head[start:end]


def test_long_list_unsubscribe_sent_on_one_line(smtp_sink: RecordingHandler) -> None:
    url = "https://campaigns.example.com/u/" + "t" * 200 + "/one-click"
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    provider().deliver(delivery(email_message(headers=headers)))

    assert header_lines(smtp_sink.messages[0], b"List-Unsubscribe") == [
        f"List-Unsubscribe: <{url}>".encode()
    ]


def test_overlong_list_unsubscribe_still_folded(smtp_sink: RecordingHandler) -> None:
    # RFC 5322 limits a line to 998 characters, so such a value cannot stay on one.
    url = "https://campaigns.example.com/u/" + "t" * 1000
    headers = {"List-Unsubscribe": f"<{url}>"}

    provider().deliver(delivery(email_message(headers=headers)))

    lines = header_lines(smtp_sink.messages[0], b"List-Unsubscribe")
    assert len(lines) > 1
    assert max(len(line) for line in lines) <= 998
    assert parse(smtp_sink.messages[0])["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    ("stage", "reply", "error_class"),
    [
        ("rcpt", "451 4.3.0 Mailbox busy, try later", TransientDeliveryError),
        ("rcpt", "421 4.7.0 Too many connections, closing", TransientDeliveryError),
        ("rcpt", "550 5.1.1 No such user", PermanentDeliveryError),
        ("data", "451 4.3.0 Queue full", TransientDeliveryError),
        ("data", "554 5.7.1 Message rejected as spam", PermanentDeliveryError),
    ],
)
def test_smtp_reply_code_classified(
    smtp_sink: RecordingHandler, stage: str, reply: str, error_class: type[Exception]
) -> None:
    if stage == "rcpt":
        smtp_sink.rcpt_reply = reply
    else:
        smtp_sink.data_reply = reply

    with pytest.raises(error_class) as raised:
        provider().deliver(delivery(email_message()))

    assert reply.split()[0] in str(raised.value)
    assert smtp_sink.messages == []


def test_silent_server_times_out_transiently(settings: Any) -> None:
    # A listening socket that never accepts: the TCP connection opens, but no
    # SMTP greeting is ever sent.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings.MAILERS = {
            "sink": {
                "BACKEND": SMTP_BACKEND,
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 0.3},
            }
        }

        with pytest.raises(TransientDeliveryError, match="timed out"):
            provider().deliver(delivery(email_message()))


def test_refused_connection_is_transient(settings: Any) -> None:
    settings.MAILERS = {
        "sink": {"BACKEND": SMTP_BACKEND, "OPTIONS": {"host": "127.0.0.1", "port": free_port()}}
    }

    with pytest.raises(TransientDeliveryError, match="ConnectionRefusedError"):
        provider().deliver(delivery(email_message()))


def test_invalid_address_error_readable() -> None:
    # What Django's SMTP backend raises for an address it cannot write.
    exc = ValueError("Invalid address 'ada@@example.com': invalid domain")

    error = classify_email_error(exc)

    assert isinstance(error, PermanentDeliveryError)
    assert str(error) == (
        "the email backend rejected the message as invalid: "
        "Invalid address 'ada@@example.com': invalid domain"
    )


def test_delivery_without_email_message_fails() -> None:
    with pytest.raises(PermanentDeliveryError, match="no email message"):
        provider().deliver(delivery(None))
    with pytest.raises(PermanentDeliveryError, match="no email message"):
        provider().deliver(delivery(OutboundMessage(channel="sms", to="+12025550100")))


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (None, TransientDeliveryError),
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
        (422, PermanentDeliveryError),
    ],
)
def test_anymail_api_error_classified(status: int | None, error_class: type[Exception]) -> None:
    response = None
    if status is not None:
        response = requests.Response()
        response.status_code = status
        response.reason = "Reason"
        response._content = b'{"error": "details"}'
    error = AnymailAPIError("ESP API response failed", status_code=status, response=response)

    assert isinstance(classify_email_error(error), error_class)


def test_anymail_refused_recipient_is_permanent() -> None:
    error = AnymailRecipientsRefused("All message recipients were rejected")

    assert isinstance(classify_email_error(error), PermanentDeliveryError)


def test_anymail_backend_sends_through_mailer(settings: Any) -> None:
    # anymail's test backend runs the whole anymail send path without an ESP.
    settings.MAILERS = {"sink": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    mail.outbox = []

    message_id = provider().deliver(delivery(email_message()))

    assert message_id == "<c3.r14@campaigns.example.com>"
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ada@example.com"]
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.anymail_status.status == {"sent"}  # type: ignore[union-attr]
