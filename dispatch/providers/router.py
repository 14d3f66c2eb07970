"""A provider that hands each delivery to the provider for its channel."""

from __future__ import annotations

from django.conf import settings

from dispatch.providers.base import Delivery, PermanentDeliveryError, Provider, build_provider


class ChannelRouter:
    """Sends each delivery through the email or SMS provider by its channel.

    A delivery without a message, because the campaign's content lacks what
    its channel needs, fails for good: a provider would send an empty message.
    """

    name = "router"

    def __init__(self, *, email: Provider, sms: Provider) -> None:
        self.email = email
        self.sms = sms

    @classmethod
    def from_settings(cls) -> ChannelRouter:
        return cls(
            email=build_provider(settings.EMAIL_DELIVERY_PROVIDER),
            sms=build_provider(settings.SMS_DELIVERY_PROVIDER),
        )

    def deliver(self, delivery: Delivery) -> str:
        channel = delivery.message.channel if delivery.message else delivery.channel
        provider = self.email if channel == "email" else self.sms
        if delivery.message is None:
            raise PermanentDeliveryError(
                f"not sent: {delivery.missing_content or 'there is no message to send'}"
            )
        return provider.deliver(delivery)
