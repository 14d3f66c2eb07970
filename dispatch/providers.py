"""Delivery providers: one small interface that every channel adapter implements.

A provider delivers one message to one recipient and returns the provider's
message id. It raises `TransientDeliveryError` for failures worth retrying
(timeouts, rate limits, server errors) and `PermanentDeliveryError` for the
rest (invalid address, rejected message). Providers run in worker threads and
must not touch the database.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


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


class SimulatedProvider:
    """Pretends to deliver: waits a random delay, then fails or succeeds by rule.

    - Recipients at `fail_email_domain`, or with a phone number that starts
      with `fail_phone_prefix`, always fail permanently.
    - Recipients at `flaky_email_domain` fail transiently on their first
      attempt and succeed on the next, to show retries.
    - Any other recipient fails transiently with probability `failure_rate`.
    """

    name = "simulated"

    def __init__(
        self,
        *,
        delay_min: float,
        delay_max: float,
        failure_rate: float,
        fail_email_domain: str,
        fail_phone_prefix: str,
        flaky_email_domain: str = "",
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= delay_min <= delay_max:
            raise ValueError(
                f"invalid simulated delay range {delay_min}..{delay_max} seconds: "
                "need 0 <= minimum <= maximum"
            )
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"invalid failure rate {failure_rate}: need a value from 0.0 to 1.0")
        self.delay_min = delay_min
        self.delay_max = delay_max
        self.failure_rate = failure_rate
        self.fail_email_domain = fail_email_domain.lower()
        self.fail_phone_prefix = fail_phone_prefix
        self.flaky_email_domain = flaky_email_domain.lower()
        self.rng = rng or random.Random()

    @classmethod
    def from_settings(cls) -> SimulatedProvider:
        return cls(
            delay_min=settings.DELIVERY_DELAY_MIN_SECONDS,
            delay_max=settings.DELIVERY_DELAY_MAX_SECONDS,
            failure_rate=settings.DELIVERY_FAILURE_RATE,
            fail_email_domain=settings.DELIVERY_FAIL_EMAIL_DOMAIN,
            fail_phone_prefix=settings.DELIVERY_FAIL_PHONE_PREFIX,
            flaky_email_domain=settings.DELIVERY_FLAKY_EMAIL_DOMAIN,
        )

    def deliver(self, delivery: Delivery) -> str:
        if self.delay_max > 0:
            time.sleep(self.rng.uniform(self.delay_min, self.delay_max))

        email_domain = delivery.email.rpartition("@")[2].lower()
        if self.fail_email_domain and email_domain == self.fail_email_domain:
            raise PermanentDeliveryError(f"mailbox unavailable at {email_domain} (simulated)")
        if self.fail_phone_prefix and delivery.phone_number.startswith(self.fail_phone_prefix):
            raise PermanentDeliveryError("number not reachable (simulated)")
        flaky = self.flaky_email_domain and email_domain == self.flaky_email_domain
        if flaky and delivery.attempt <= 1:
            raise TransientDeliveryError("connection timed out (simulated, first attempt)")
        if self.failure_rate and self.rng.random() < self.failure_rate:
            raise TransientDeliveryError("provider busy, try again later (simulated)")
        return f"simulated-{uuid.uuid4()}"


def get_provider() -> Provider:
    """Build the provider that `DELIVERY_PROVIDER` names (a dotted path to a class).

    The class is built with its `from_settings()` class method when it has
    one, else with no arguments.
    """
    provider_class = import_string(settings.DELIVERY_PROVIDER)
    factory = getattr(provider_class, "from_settings", provider_class)
    provider: Provider = factory()
    return provider
