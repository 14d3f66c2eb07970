"""A provider that pretends to deliver, for development, demos and tests."""

from __future__ import annotations

import random
import time
import uuid

from django.conf import settings

from dispatch.providers.base import Delivery, PermanentDeliveryError, TransientDeliveryError


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
