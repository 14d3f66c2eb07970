"""Template tag for the link to the captured-mail pages."""

from __future__ import annotations

from django import template

from dispatch.mail_views import mail_pages_enabled

register = template.Library()


@register.simple_tag
def dev_mail_enabled() -> bool:
    """Return whether the /dev/mail/ pages exist, so a template can link to them."""
    return mail_pages_enabled()
