"""The provider interface: what a provider receives, returns and raises.

A provider delivers one message to one recipient and returns the provider's
message id. It raises `TransientDeliveryError` for failures worth retrying
(timeouts, rate limits, server errors) and `PermanentDeliveryError` for the
rest (invalid address, rejected message). Providers run in worker threads and
must not touch the database.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from suppressions.redaction import redact

Channel = Literal["email", "sms"]


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one recipient on one channel.

    For email, `to` is the address, and `headers` are extra header fields such
    as Message-ID, List-Unsubscribe and List-Unsubscribe-Post. For SMS, `to` is
    the phone number in E.164 form and only `text` is sent.
    """

    channel: Channel
    to: str
    subject: str = ""
    text: str = ""
    html: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Delivery:
    """The data a provider needs to deliver one message."""

    campaign_id: int
    recipient_id: int
    attempt: int
    name: str
    email: str
    phone_number: str
    # The same for every attempt and every reclaim of this recipient in this
    # campaign, so a provider that supports idempotency keys drops repeats.
    idempotency_key: str
    # The rendered message, or None when the campaign's content lacks what
    # the channel needs (`missing_content` names it). Only the simulated
    # provider, which needs no content, accepts a delivery without one.
    message: OutboundMessage | None = None
    # The channel chosen for this recipient.
    channel: Channel = "email"
    missing_content: str = ""


# Characters of a failure reason that are kept, so that it fits
# Recipient.failure_reason (255) with the "…" that marks the cut. A provider's
# error can carry a whole HTTP response body, which may repeat the message,
# its recipient or its unsubscribe link.
MAX_REASON_CHARACTERS = 250


def short_reason(text: str) -> str:
    """Return `text` on one line, without unsubscribe tokens, cut to MAX_REASON_CHARACTERS.

    Line breaks go because a provider's response could otherwise add lines
    of its own to the log.
    """
    one_line = " ".join(redact(text).split())
    if len(one_line) <= MAX_REASON_CHARACTERS:
        return one_line
    return one_line[: MAX_REASON_CHARACTERS - 1] + "…"


def traceback_with_short_message(exc: BaseException) -> str:
    """Format `exc`'s traceback for the log, with its message passed through `short_reason`.

    An unexpected error of a provider may carry a whole response body in its
    message. Chained exceptions are left out.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))
    message = short_reason(str(exc))
    return f"Traceback (most recent call last):\n{frames}{type(exc).__qualname__}: {message}"


class DeliveryError(Exception):
    """Delivery failed; the message is a short reason fit to show an operator.

    The reason is passed through `short_reason`, so `str(exc)` is always fit
    for the log, the recipient's row and the attempts list.
    """

    transient = False

    def __init__(self, reason: str = "") -> None:
        super().__init__(short_reason(reason))


class TransientDeliveryError(DeliveryError):
    """A failure that may pass: timeout, rate limit, server error. Retried with backoff."""

    transient = True


class PermanentDeliveryError(DeliveryError):
    """A failure that will not pass: invalid address, rejected message. Never retried."""


class Provider(Protocol):
    name: str

    def deliver(self, delivery: Delivery) -> str:
        """Deliver one message and return the provider's message id."""
        ...


def build_provider(dotted_path: str) -> Provider:
    """Build the provider class at `dotted_path`.

    The class is built with its `from_settings()` class method when it has
    one, else with no arguments.
    """
    provider_class = import_string(dotted_path)
    factory = getattr(provider_class, "from_settings", provider_class)
    provider: Provider = factory()
    return provider


def get_provider() -> Provider:
    """Build the provider that `DELIVERY_PROVIDER` names (a dotted path to a class)."""
    return build_provider(settings.DELIVERY_PROVIDER)
