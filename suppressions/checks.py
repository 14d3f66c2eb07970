"""Deployment check of SITE_URL, which every unsubscribe link starts with."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning


@register(Tags.security, deploy=True)
def check_site_url_uses_https(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when SITE_URL is plain http, which puts unsubscribe tokens on the wire unencrypted."""
    if settings.SITE_URL.startswith("https://"):
        return []
    return [
        CheckWarning(
            f"SITE_URL={settings.SITE_URL!r} does not start with https://, so the unsubscribe "
            "links in messages send their tokens unencrypted.",
            hint="Set SITE_URL to the app's public HTTPS address, such as "
            "https://campaigns.example.com.",
            id="suppressions.W001",
        )
    ]
