"""The provider interface: what a provider receives, returns and raises.

A provider delivers one message to one recipient and returns the provider's
message id. It raises `TransientDeliveryError` for failures worth retrying
(timeouts, rate limits, server errors) and `PermanentDeliveryError` for the
rest (invalid address, rejected message). Providers run in worker threads and
must not touch the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

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
    # The rendered message. None when the campaign's content lacks what the
    # channel needs (`missing_content` says what); only the simulated
    # provider, which needs no content, accepts such a delivery.
    message: OutboundMessage | None = None
    # The channel chosen for this recipient.
    channel: Channel = "email"
    missing_content: str = ""


class DeliveryError(Exception):
    """Delivery failed; the message is a short reason fit to show an operator."""

    transient = False


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
