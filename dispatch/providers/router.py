"""A provider that hands each delivery to the provider for its channel."""

from __future__ import annotations

from django.conf import settings

from dispatch.providers.base import Delivery, Provider, build_provider
from dispatch.providers.simulated import SimulatedProvider


class ChannelRouter:
    """Sends each delivery through the email or SMS provider by its message's channel.

    A delivery without a message goes to `fallback`, the simulated provider
    when built from settings, which needs only the recipient's fields.
    """

    name = "router"

    def __init__(self, *, email: Provider, sms: Provider, fallback: Provider) -> None:
        self.email = email
        self.sms = sms
        self.fallback = fallback

    @classmethod
    def from_settings(cls) -> ChannelRouter:
        return cls(
            email=build_provider(settings.EMAIL_DELIVERY_PROVIDER),
            sms=build_provider(settings.SMS_DELIVERY_PROVIDER),
            fallback=SimulatedProvider.from_settings(),
        )

    def deliver(self, delivery: Delivery) -> str:
        if delivery.message is None:
            return self.fallback.deliver(delivery)
        if delivery.message.channel == "email":
            return self.email.deliver(delivery)
        return self.sms.deliver(delivery)
