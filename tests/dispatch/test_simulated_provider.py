"""The simulated provider's failure rules."""

from __future__ import annotations

import random

import pytest

from dispatch.providers import Delivery, DeliveryError, SimulatedProvider


def provider(failure_rate: float = 0.0, seed: int = 7) -> SimulatedProvider:
    return SimulatedProvider(
        delay_min=0,
        delay_max=0,
        failure_rate=failure_rate,
        fail_email_domain="fail.example.com",
        fail_phone_prefix="+1202555019",
        rng=random.Random(seed),
    )


def delivery(email: str = "", phone_number: str = "") -> Delivery:
    """A first attempt to reach this address."""
    return Delivery(
        campaign_id=1,
        recipient_id=1,
        attempt=1,
        name="",
        email=email,
        phone_number=phone_number,
        idempotency_key="campaign-1-recipient-1",
    )


def test_ordinary_recipient_gets_message_id():
    message_id = provider().deliver(delivery(email="ada@example.com"))

    assert message_id.startswith("simulated-")


def test_failing_domain_always_fails():
    with pytest.raises(DeliveryError, match=r"fail\.example\.com"):
        provider().deliver(delivery(email="ada@FAIL.example.com"))


def test_failing_phone_prefix_always_fails():
    with pytest.raises(DeliveryError, match="not reachable"):
        provider().deliver(delivery(phone_number="+12025550195"))


def test_failure_rate_fails_about_that_share():
    simulated = provider(failure_rate=0.3, seed=42)
    failures = 0
    for number in range(1000):
        try:
            simulated.deliver(delivery(email=f"r{number}@example.com"))
        except DeliveryError:
            failures += 1

    # Binomial(1000, 0.3) has a standard deviation of about 14.5.
    assert 230 < failures < 370


def test_zero_failure_rate_never_fails():
    simulated = provider(failure_rate=0.0)
    for number in range(200):
        simulated.deliver(delivery(email=f"r{number}@example.com"))
