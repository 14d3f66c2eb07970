"""Values and objects that tests give the models and clients they create."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

# The password of the `operator` user that signed-in clients use.
OPERATOR_PASSWORD = "correct-horse-battery-4821"

# Message content for both channels, so that a campaign can be dispatched
# whatever its recipients have (Campaign.missing_content).
MESSAGE_CONTENT = {
    "email_subject": "News for {{ first_name|default:'you' }}",
    "email_text": "Hello {{ name|default:'there' }},\n\nHere is our news.",
    "sms_text": "Hello {{ first_name|default:'there' }}, here is our news.",
}


def operator_user() -> Any:
    """Return the user that signed-in test clients use, creating it if needed."""
    user_model = get_user_model()
    user = user_model.objects.filter(username="operator").first()
    if user is None:
        user = user_model.objects.create_user("operator", "operator@example.com", OPERATOR_PASSWORD)
    return user


def signed_in_async_client() -> AsyncClient:
    """Return an AsyncClient signed in as the operator.

    Call it from synchronous code: signing in writes the session.
    """
    client = AsyncClient()
    client.force_login(operator_user())
    return client


def session_cookie() -> dict[str, str]:
    """Return a Cookie header that signs a raw HTTP request in as the operator."""
    client = Client()
    client.force_login(operator_user())
    name = settings.SESSION_COOKIE_NAME
    return {"Cookie": f"{name}={client.cookies[name].value}"}
