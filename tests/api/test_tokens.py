"""API tokens: the UI that creates and revokes them, hashing, and authentication."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Role, join_workspace
from api.models import ApiToken
from audit.models import AuditEvent
from tests.api.conftest import ApiClient, issue_token
from tests.factories import OPERATOR_PASSWORD, operator_user, operator_workspace

pytestmark = pytest.mark.django_db

TOKENS_URL = reverse("accounts:api_tokens")


def created_token(response: Any) -> str:
    match = re.search(r'id="new_token"[^>]*value="([^"]+)"', response.content.decode())
    assert match is not None, "the page does not show the new token"
    return match.group(1)


def member_client(username: str = "grace") -> tuple[Client, Any]:
    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", OPERATOR_PASSWORD
    )
    join_workspace(user, operator_workspace(), Role.MEMBER)
    client = Client()
    client.force_login(user)
    return client, user


def test_create_token_shows_it_once(client: Client, make_api: Callable[[str], ApiClient]) -> None:
    response = client.post(TOKENS_URL, {"name": "CRM sync"})

    assert response.status_code == 200
    token = created_token(response)
    stored = ApiToken.objects.get()
    assert stored.name == "CRM sync"
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(stored.prefix)
    assert token not in str(list(ApiToken.objects.values()))
    assert "no-store" in response["Cache-Control"]
    listing = client.get(TOKENS_URL).content.decode()
    assert stored.prefix in listing
    assert token not in listing
    assert AuditEvent.objects.filter(action="api_token_created").exists()
    assert make_api(token).get("/api/v1/campaigns").status_code == 200


def test_create_token_needs_name(client: Client) -> None:
    response = client.post(TOKENS_URL, {"name": "   "})

    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_last_used_is_recorded(api: ApiClient) -> None:
    assert ApiToken.objects.get().last_used_at is None

    api.get("/api/v1/campaigns")

    assert ApiToken.objects.get().last_used_at is not None


def test_recent_use_is_not_written_again(api: ApiClient) -> None:
    api.get("/api/v1/campaigns")
    first = ApiToken.objects.get().last_used_at

    with CaptureQueriesContext(connection) as queries:
        api.get("/api/v1/campaigns")

    assert ApiToken.objects.get().last_used_at == first
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def test_revoked_token_is_401(client: Client, api: ApiClient) -> None:
    token = ApiToken.objects.get()

    response = client.post(reverse("accounts:api_token_revoke", args=[token.pk]))

    assert response.status_code == 303
    assert ApiToken.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token_revoked").exists()
    rejected = api.get("/api/v1/campaigns")
    assert rejected.status_code == 401
    assert rejected.json()["code"] == "token_invalid"


def test_member_revokes_only_own_tokens(api: ApiClient) -> None:
    member, user = member_client()
    operator_token = ApiToken.objects.get()
    own = ApiToken.issue(operator_workspace().pk, user, "mine")[0]

    others = member.post(reverse("accounts:api_token_revoke", args=[operator_token.pk]))
    mine = member.post(reverse("accounts:api_token_revoke", args=[own.pk]))

    assert others.status_code == 404
    assert ApiToken.objects.get(pk=operator_token.pk).revoked_at is None
    assert mine.status_code == 303
    assert ApiToken.objects.get(pk=own.pk).revoked_at is not None


def test_owner_revokes_member_token(client: Client) -> None:
    _, user = member_client()
    token = ApiToken.issue(operator_workspace().pk, user, "member's")[0]

    response = client.post(reverse("accounts:api_token_revoke", args=[token.pk]))

    assert response.status_code == 303
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_token_of_member_who_left_is_401(make_api: Callable[[str], ApiClient]) -> None:
    _, user = member_client()
    api = make_api(issue_token(operator_workspace(), user))
    assert api.get("/api/v1/campaigns").status_code == 200

    Membership.objects.filter(user=user).delete()

    assert api.get("/api/v1/campaigns").status_code == 401


def test_token_of_deactivated_user_is_401(make_api: Callable[[str], ApiClient]) -> None:
    _, user = member_client()
    api = make_api(issue_token(operator_workspace(), user))

    get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    assert api.get("/api/v1/campaigns").status_code == 401


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("", "token_missing"),
        ("Bearer", "token_invalid"),
        ("Basic b3BlcmF0b3I6eA==", "token_invalid"),
        ("Bearer cdt_not-a-real-token", "token_invalid"),
    ],
)
def test_bad_authorization_is_401(db: None, header: str, code: str) -> None:
    headers = {"Authorization": header} if header else {}

    response = Client().get("/api/v1/campaigns", headers=headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_session_does_not_authenticate_api(client: Client) -> None:
    response = client.post("/api/v1/campaigns", {}, content_type="application/json")

    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"


def test_token_needs_no_csrf_token(operator: Any) -> None:
    token = issue_token(operator_workspace(), operator_user())
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/api/v1/campaigns",
        data={"name": "No CSRF", "email_text": "Hi", "email_subject": "Hi", "recipients": []},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 201, response.content
