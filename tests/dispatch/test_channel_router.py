"""The channel router: which provider each delivery goes to."""

from __future__ import annotations

from typing import Any

from dispatch.providers import ChannelRouter, Delivery, OutboundMessage, SimulatedProvider


class NamedProvider:
    """Returns its own name and records what it delivered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.delivered: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> str:
        self.delivered.append(delivery)
        return f"{self.name}-id"


def delivery(message: OutboundMessage | None) -> Delivery:
    return Delivery(
        campaign_id=1,
        recipient_id=2,
        attempt=1,
        name="Ada",
        email="ada@example.com",
        phone_number="+12025550100",
        idempotency_key="campaign-1-recipient-2",
        message=message,
    )


def router() -> tuple[ChannelRouter, NamedProvider, NamedProvider, NamedProvider]:
    email, sms, fallback = NamedProvider("email"), NamedProvider("sms"), NamedProvider("fallback")
    return ChannelRouter(email=email, sms=sms, fallback=fallback), email, sms, fallback


def test_router_sends_email_to_email_provider() -> None:
    channel_router, email, sms, fallback = router()
    message = OutboundMessage(channel="email", to="ada@example.com", subject="Hi")

    assert channel_router.deliver(delivery(message)) == "email-id"
    assert len(email.delivered) == 1
    assert sms.delivered == []
    assert fallback.delivered == []


def test_router_sends_sms_to_sms_provider() -> None:
    channel_router, email, sms, fallback = router()
    message = OutboundMessage(channel="sms", to="+12025550100", text="Hi")

    assert channel_router.deliver(delivery(message)) == "sms-id"
    assert len(sms.delivered) == 1
    assert email.delivered == []
    assert fallback.delivered == []


def test_router_without_message_uses_fallback() -> None:
    channel_router, email, sms, fallback = router()

    assert channel_router.deliver(delivery(None)) == "fallback-id"
    assert len(fallback.delivered) == 1
    assert email.delivered == sms.delivered == []


def test_router_from_settings_builds_providers(settings: Any) -> None:
    settings.EMAIL_DELIVERY_PROVIDER = "dispatch.providers.EmailBackendProvider"
    settings.SMS_DELIVERY_PROVIDER = "dispatch.providers.SimulatedProvider"
    settings.DEFAULT_FROM_EMAIL = "campaigns@example.com"

    channel_router = ChannelRouter.from_settings()

    assert channel_router.email.name == "email"
    assert isinstance(channel_router.sms, SimulatedProvider)
    assert isinstance(channel_router.fallback, SimulatedProvider)


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
