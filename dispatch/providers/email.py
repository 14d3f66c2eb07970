"""Email through any Django email backend: SMTP, or an ESP through django-anymail."""

from __future__ import annotations

import logging
import smtplib
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from email.utils import parseaddr

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers

from dispatch.providers.base import (
    Delivery,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

logger = logging.getLogger(__name__)

# RFC 5322's limit for a line of a message, without its CRLF.
MAX_LINE_LENGTH = 998


class _OneLineHeader(UnstructuredHeader, BaseHeader):
    """A header written on one line as it is, never folded or RFC 2047-encoded.

    Python's email package (3.13) encodes a word that does not fit in
    `max_line_length` (78) as `=?utf-8?q?...?=`, and a one-click URL is one
    word of about 150 characters. Encoded, the header is no longer the URL
    in angle brackets that RFC 2369 and RFC 8058 define, and mail clients
    cannot use it; RFC 5322 allows lines of up to 998 characters. A value
    that is not ASCII or too long for one line is folded as usual.
    """

    def fold(self, *, policy: Policy) -> str:
        line = f"{self.name}: {self}"
        if line.isascii() and len(line) <= MAX_LINE_LENGTH:
            return line + policy.linesep
        return super().fold(policy=policy)


_HEADER_FACTORY = HeaderRegistry()
_HEADER_FACTORY.map_to_type("List-Unsubscribe", _OneLineHeader)


class _CampaignEmail(EmailMultiAlternatives):
    """A Django email whose List-Unsubscribe header goes out unencoded on one line."""

    def message(self, *, policy: Policy | None = None) -> EmailMessage:
        # Django 6.1's SMTP backend passes email.policy.SMTP. The clone keeps
        # its line ends and changes only the class of List-Unsubscribe.
        policy = policy or email_policy.default
        if isinstance(policy, EmailPolicy):
            policy = policy.clone(header_factory=_HEADER_FACTORY)
        return super().message(policy=policy)


class EmailBackendProvider:
    """Sends `delivery.message` through a Django mailer (settings.MAILERS).

    Each delivery opens its own backend connection, because one provider
    serves many worker threads at once and an SMTP connection is not
    thread-safe. The message keeps the Message-ID in its headers; without one
    it gets `<idempotency key@sender's domain>`, the same on every attempt.
    """

    name = "email"

    def __init__(self, *, from_email: str, mailer: str = "default") -> None:
        self.from_email = from_email
        # The MAILERS alias whose backend and options send the message.
        self.mailer = mailer

    @classmethod
    def from_settings(cls) -> EmailBackendProvider:
        return cls(from_email=settings.DEFAULT_FROM_EMAIL)

    def deliver(self, delivery: Delivery) -> str:
        message = delivery.message
        if message is None or message.channel != "email":
            raise PermanentDeliveryError("no email message to send (the email provider needs one)")
        if not message.to:
            raise PermanentDeliveryError("missing email address")
        if not message.to.rpartition("@")[0].isascii():
            # campaigns.normalization.clean_email rejects such addresses, but
            # rows written without it (Recipient.save() only normalises) can
            # still have one. Django's SMTP backend would raise ValueError.
            raise PermanentDeliveryError(
                f"the email address {message.to} has non-ASCII characters before the @, "
                "which can only be sent with SMTPUTF8, and this app does not use it"
            )

        headers = dict(message.headers)
        message_id = headers.get("Message-ID") or self._default_message_id(delivery)
        headers["Message-ID"] = message_id
        email = _CampaignEmail(
            subject=message.subject,
            body=message.text,
            from_email=self.from_email,
            to=[message.to],
            headers=headers,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")

        connection = mailers[self.mailer]
        try:
            sent = connection.send_messages([email])
        except Exception as exc:
            raise classify_email_error(exc) from exc
        if not sent:
            raise PermanentDeliveryError(f"the email backend sent nothing to {message.to}")
        return message_id

    def _default_message_id(self, delivery: Delivery) -> str:
        domain = parseaddr(self.from_email)[1].rpartition("@")[2] or "localhost"
        return f"<{delivery.idempotency_key}@{domain}>"


def classify_email_error(exc: Exception) -> DeliveryError:
    """Map an email backend's exception to a transient or permanent delivery error.

    SMTP replies 4xx are transient and 5xx permanent. Network failures are
    transient. Anymail API errors are transient for 429, 5xx or no HTTP status
    (the request did not complete), and permanent for other statuses.
    Exceptions that none of these rules cover are permanent.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in exc.recipients.values()]
        replies = "; ".join(
            f"{address}: {code} {_decode(reply)}"
            for address, (code, reply) in exc.recipients.items()
        )
        reason = f"recipient rejected: {replies}"
        if codes and all(400 <= code < 500 for code in codes):
            return TransientDeliveryError(reason)
        return PermanentDeliveryError(reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        reason = f"SMTP server replied {exc.smtp_code} {_decode(exc.smtp_error)}"
        if 400 <= exc.smtp_code < 500:
            return TransientDeliveryError(reason)
        return PermanentDeliveryError(reason)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientDeliveryError(f"SMTP server disconnected: {exc}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # The server lacks an extension that the settings require, such as
        # STARTTLS for EMAIL_USE_TLS: retrying does not help.
        return PermanentDeliveryError(f"SMTP server does not support a required feature: {exc}")
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"SMTP connection timed out: {exc}")
    if isinstance(exc, OSError):
        # Connection refused or reset, DNS failures and TLS errors.
        return TransientDeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentDeliveryError(f"recipient rejected by the email service: {exc}")
    if isinstance(exc, AnymailAPIError):
        status = exc.status_code
        reason = f"email service error (HTTP status {status}): {_first_line(exc)}"
        if status is None or status == 429 or status >= 500:
            return TransientDeliveryError(reason)
        return PermanentDeliveryError(reason)
    if isinstance(exc, AnymailError):
        return PermanentDeliveryError(f"email service rejected the message: {_first_line(exc)}")
    if isinstance(exc, ValueError):
        # Django's mailers raise ValueError for an address or header that
        # they cannot write into a message.
        return PermanentDeliveryError(f"the email backend rejected the message as invalid: {exc}")
    return PermanentDeliveryError(f"email backend failed: {type(exc).__name__}: {exc}")


def _decode(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", errors="replace")
    return reply


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
