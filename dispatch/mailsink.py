"""A development SMTP sink: store every message received as a .eml file, and read them back.

`manage.py smtp_sink` runs the server; the /dev/mail/ page lists the files.
Each file is the message as received, after two header fields that record
the SMTP envelope: Return-Path (the sender) and X-Envelope-To (the
recipients, comma-separated).

With `SinkRules`, the sink rejects some recipients at RCPT time as a real
server would, so that a dispatch through SMTP shows permanent failures and
retries. A rejected recipient is not stored.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings

# Names of stored messages: the UTC time received, to the microsecond, and a
# random suffix. Sorting by name sorts by time.
MESSAGE_NAME = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")


def store_message(directory: Path, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
    """Write one received message to `directory` and return its path.

    The file is written under a temporary name and then renamed, so readers
    never see half a message.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"
    envelope = f"Return-Path: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
    path = directory / f"{name}.eml"
    temporary = directory / f".{name}.tmp"
    temporary.write_bytes(envelope.encode() + content)
    os.replace(temporary, path)
    return path


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass
class SinkRules:
    """Recipient rules that make the sink reply to RCPT as a failing server would.

    - A recipient at `fail_domain` is rejected with 550, a permanent error.
    - A recipient at `flaky_domain` is rejected with 451, a transient error,
      on its 1st, 3rd, 5th ... RCPT and accepted on the others, so each
      retry after a rejection succeeds.

    Domains are compared ignoring case, and an empty domain turns its rule
    off. The RCPT count of each flaky address lives in memory only, so it
    starts again when the sink restarts.
    """

    fail_domain: str
    flaky_domain: str
    rcpt_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fail_domain = self.fail_domain.lower()
        self.flaky_domain = self.flaky_domain.lower()

    @classmethod
    def from_settings(cls) -> SinkRules:
        """Build the rules from the domains that the simulated provider also fails."""
        return cls(
            fail_domain=settings.DELIVERY_FAIL_EMAIL_DOMAIN,
            flaky_domain=settings.DELIVERY_FLAKY_EMAIL_DOMAIN,
        )

    def rejection(self, address: str) -> str | None:
        """Return the SMTP reply that rejects `address`, or None to accept it.

        Counts the RCPT of a flaky address, so call it once per RCPT command.
        """
        domain = _domain(address)
        if self.fail_domain and domain == self.fail_domain:
            return f"550 5.1.1 <{address}>: mailbox unavailable (development sink rule)"
        if self.flaky_domain and domain == self.flaky_domain:
            # The local part keeps its case, because RFC 5321 lets a server
            # treat it as case-sensitive. Domains never are.
            key = f"{address.rpartition('@')[0]}@{domain}"
            count = self.rcpt_counts.get(key, 0) + 1
            self.rcpt_counts[key] = count
            if count % 2 == 1:
                return "451 4.3.0 try again later (development sink rule)"
        return None


class SinkHandler:
    """aiosmtpd handler that stores every message it accepts with `store_message`.

    Without `rules` it accepts every recipient. With them, it rejects the
    recipients that the rules name and calls `on_rejected` with the address
    and the reply for each rejection.
    """

    def __init__(
        self,
        directory: Path,
        on_stored: Callable[[Path, EmailMessage], None],
        rules: SinkRules | None = None,
        on_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.on_stored = on_stored
        self.rules = rules
        self.on_rejected = on_rejected

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rules.rejection(address) if self.rules else None
        if reply is not None:
            if self.on_rejected is not None:
                self.on_rejected(address, reply)
            return reply
        # With a handle_RCPT hook, aiosmtpd (1.4) leaves adding the recipient
        # to the envelope to the hook.
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        if isinstance(content, str):
            content = content.encode()
        if content is None:
            return "554 5.6.0 Empty message"
        path = store_message(
            self.directory, envelope.mail_from or "", list(envelope.rcpt_tos), content
        )
        self.on_stored(path, parse_message(content))
        return "250 2.0.0 Message stored"


@dataclass(frozen=True)
class CapturedMessage:
    """One stored message, parsed for display."""

    name: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str
    message: EmailMessage

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.message.items()]

    @property
    def text(self) -> str:
        return _body(self.message, "plain")

    @property
    def html(self) -> str:
        return _body(self.message, "html")


def parse_message(content: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


def read_message(directory: Path, name: str) -> CapturedMessage | None:
    """Return the stored message `name`, or None when the name is invalid or not found."""
    if not MESSAGE_NAME.match(name):
        return None
    path = directory / f"{name}.eml"
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    message = parse_message(content)
    received_at = datetime.strptime(name.partition("-")[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    recipients = message.get("X-Envelope-To") or message.get("To") or ""
    return CapturedMessage(
        name=name,
        received_at=received_at,
        sender=str(message.get("From", "")),
        recipients=str(recipients),
        subject=str(message.get("Subject", "")),
        message=message,
    )


def list_messages(directory: Path, limit: int) -> list[CapturedMessage]:
    """Return the `limit` newest stored messages, newest first."""
    if not directory.is_dir():
        return []
    names = sorted(
        (path.stem for path in directory.glob("*.eml") if MESSAGE_NAME.match(path.stem)),
        reverse=True,
    )
    messages = []
    for name in names[:limit]:
        captured = read_message(directory, name)
        if captured is not None:
            messages.append(captured)
    return messages
