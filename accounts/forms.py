"""The sign-in form, throttled per account and per client address."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts import throttle


def client_address(request: Any) -> str:
    """Return the client's IP address as the web server reports it.

    Behind a proxy this is the proxy's address unless the server trusts its
    forwarding headers (uvicorn's --proxy-headers and --forwarded-allow-ips).
    """
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refused while the account or the address is locked out."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        locked = throttle.lockout(username, address)
        if locked is not None:
            raise forms.ValidationError(locked.message, code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.record_failure(username, address)
            raise
        throttle.clear_account(username)
        return cleaned
