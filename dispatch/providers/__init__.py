"""Delivery providers: one small interface that every channel adapter implements.

`base` defines the interface. Settings name a provider class by dotted path,
such as `dispatch.providers.SimulatedProvider`, so every provider is
importable from this package.
"""

from dispatch.providers.base import (
    Channel,
    Delivery,
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    Provider,
    TransientDeliveryError,
    build_provider,
    get_provider,
)
from dispatch.providers.email import EmailBackendProvider
from dispatch.providers.router import ChannelRouter
from dispatch.providers.simulated import SimulatedProvider
from dispatch.providers.sms import TwilioSmsProvider, WebhookSmsProvider

__all__ = [
    "Channel",
    "ChannelRouter",
    "Delivery",
    "DeliveryError",
    "EmailBackendProvider",
    "OutboundMessage",
    "PermanentDeliveryError",
    "Provider",
    "SimulatedProvider",
    "TransientDeliveryError",
    "TwilioSmsProvider",
    "WebhookSmsProvider",
    "build_provider",
    "get_provider",
]
