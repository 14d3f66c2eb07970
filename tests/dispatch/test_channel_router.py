"""The channel router: which provider each delivery goes to."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.providers import (
    Channel,
    ChannelRouter,
    Delivery,
    OutboundMessage,
    PermanentDeliveryError,
    SimulatedProvider,
)


class NamedProvider:
    """Returns its own name and records what it delivered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.delivered: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> str:
        self.delivered.append(delivery)
        return f"{self.name}-id"


def delivery(
    message: OutboundMessage | None, channel: Channel = "email", missing: str = ""
) -> Delivery:
    return Delivery(
        campaign_id=1,
        recipient_id=2,
        attempt=1,
        name="Ada",
        email="ada@example.com",
        phone_number="+12025550100",
        idempotency_key="campaign-1-recipient-2",
        message=message,
        channel=channel,
        missing_content=missing,
    )


def router() -> tuple[ChannelRouter, NamedProvider, NamedProvider]:
    email, sms = NamedProvider("email"), NamedProvider("sms")
    return ChannelRouter(email=email, sms=sms), email, sms


def test_router_sends_email_to_email_provider() -> None:
    channel_router, email, sms = router()
    message = OutboundMessage(channel="email", to="ada@example.com", subject="Hi")

    assert channel_router.deliver(delivery(message)) == "email-id"
    assert len(email.delivered) == 1
    assert sms.delivered == []


def test_router_sends_sms_to_sms_provider() -> None:
    channel_router, email, sms = router()
    message = OutboundMessage(channel="sms", to="+12025550100", text="Hi")

    assert channel_router.deliver(delivery(message, channel="sms")) == "sms-id"
    assert len(sms.delivered) == 1
    assert email.delivered == []


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_router_refuses_delivery_without_message(channel: Channel) -> None:
    # A provider would send an empty message, the simulated one included.
    channel_router, email, sms = router()

    with pytest.raises(PermanentDeliveryError) as raised:
        channel_router.deliver(delivery(None, channel, "the campaign has no SMS text"))

    assert str(raised.value) == "not sent: the campaign has no SMS text"
    assert email.delivered == sms.delivered == []


def test_router_from_settings_builds_providers(settings: Any) -> None:
    settings.EMAIL_DELIVERY_PROVIDER = "dispatch.providers.EmailBackendProvider"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.DEFAULT_FROM_EMAIL = "campaigns@example.com"

    channel_router = ChannelRouter.from_settings()

    assert channel_router.email.name == "email"
    assert isinstance(channel_router.sms, SimulatedProvider)


def test_delivery_message_defaults_to_none() -> None:
    plain = Delivery(
        campaign_id=1,
        recipient_id=2,
        attempt=1,
        name="",
        email="ada@example.com",
        phone_number="",
        idempotency_key="k",
    )

    assert plain.message is None
    assert dict(OutboundMessage(channel="email", to="ada@example.com").headers) == {}
