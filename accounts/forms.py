"""The sign-in form, throttled per account and per client address, and the reset form."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
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


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, which also sends the link to accounts without a password.

    People invited to a workspace get an account without a password and a
    link to choose one (accounts/workspace_views.py). When that link has
    expired, this form sends them a new one. Django's own form leaves such
    accounts out.
    """

    def get_users(self, email: str) -> Iterator[Any]:
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        candidates = user_model._default_manager.filter(
            **{f"{email_field}__iexact": email, "is_active": True}
        )
        wanted = unicodedata.normalize("NFKC", email).casefold()
        for user in candidates:
            stored = unicodedata.normalize("NFKC", getattr(user, email_field) or "").casefold()
            if stored == wanted:
                yield user
