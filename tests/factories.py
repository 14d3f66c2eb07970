"""Values and objects that tests give the models and clients they create."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from accounts.models import Membership, Role, Workspace, join_workspace

# The password of the `operator` user that signed-in clients use.
OPERATOR_PASSWORD = "correct-horse-battery-4821"

# Message content for both channels, so that a campaign can be dispatched
# whatever its recipients have (Campaign.missing_content).
MESSAGE_CONTENT = {
    "email_subject": "News for {{ first_name|default:'you' }}",
    "email_text": "Hello {{ name|default:'there' }},\n\nHere is our news.",
    "sms_text": "Hello {{ first_name|default:'there' }}, here is our news.",
}


# The workspace of the campaigns that tests create, which `operator` owns.
OPERATOR_WORKSPACE = "Operators"


def operator_user() -> Any:
    """Return the user that signed-in test clients use, creating it if needed.

    The user is the owner of the workspace that operator_workspace() returns.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username="operator").first()
    if user is None:
        user = user_model.objects.create_user("operator", "operator@example.com", OPERATOR_PASSWORD)
    if not Membership.objects.filter(user=user).exists():
        workspace = Workspace.objects.filter(name=OPERATOR_WORKSPACE).order_by("id").first()
        if workspace is None:
            workspace = Workspace.objects.create(name=OPERATOR_WORKSPACE)
        join_workspace(user, workspace, Role.OWNER)
    return user


def operator_workspace() -> Workspace:
    """Return the workspace of the operator and of the campaigns that tests create.

    It is the operator's first workspace, found by membership rather than by
    name, so a test may rename it.
    """
    membership = (
        Membership.objects.filter(user=operator_user())
        .select_related("workspace")
        .order_by("id")
        .first()
    )
    assert membership is not None
    return membership.workspace


def other_workspace_user(username: str = "outsider") -> Any:
    """Return a user who owns a workspace of their own and is not in the operator's."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(
            username, f"{username}@example.com", OPERATOR_PASSWORD
        )
        workspace = Workspace.objects.create(name=f"{username.title()} workspace")
        join_workspace(user, workspace, Role.OWNER)
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
