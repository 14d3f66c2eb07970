"""Delivery providers: one small interface that every channel adapter implements.

A provider delivers one message to one recipient, returns the provider's
message id, and raises `DeliveryError` when delivery failed.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Protocol

from django.conf import settings

from campaigns.models import Recipient


class DeliveryError(Exception):
    """Delivery failed; the message is a short reason fit to show an operator."""


class Provider(Protocol):
    def deliver(self, recipient: Recipient) -> str:
        """Deliver to `recipient` and return the provider's message id."""
        ...


class SimulatedProvider:
    """Pretends to deliver: waits a random delay, then fails or succeeds by rule.

    Recipients at `fail_email_domain`, or with a phone number that starts with
    `fail_phone_prefix`, always fail, so tests and demos can choose failures.
    Any other recipient fails with probability `failure_rate`.
    """

    def __init__(
        self,
        *,
        delay_min: float,
        delay_max: float,
        failure_rate: float,
        fail_email_domain: str,
        fail_phone_prefix: str,
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
        self.rng = rng or random.Random()

    def deliver(self, recipient: Recipient) -> str:
        if self.delay_max > 0:
            time.sleep(self.rng.uniform(self.delay_min, self.delay_max))

        email_domain = recipient.email.rpartition("@")[2].lower()
        if self.fail_email_domain and email_domain == self.fail_email_domain:
            raise DeliveryError(f"mailbox unavailable at {email_domain} (simulated)")
        if self.fail_phone_prefix and recipient.phone_number.startswith(self.fail_phone_prefix):
            raise DeliveryError("number not reachable (simulated)")
        if self.failure_rate and self.rng.random() < self.failure_rate:
            raise DeliveryError("provider rejected the message (simulated random failure)")
        return f"simulated-{uuid.uuid4()}"


def get_provider() -> Provider:
    """Build the provider that settings select."""
    return SimulatedProvider(
        delay_min=settings.DELIVERY_DELAY_MIN_SECONDS,
        delay_max=settings.DELIVERY_DELAY_MAX_SECONDS,
        failure_rate=settings.DELIVERY_FAILURE_RATE,
        fail_email_domain=settings.DELIVERY_FAIL_EMAIL_DOMAIN,
        fail_phone_prefix=settings.DELIVERY_FAIL_PHONE_PREFIX,
    )
