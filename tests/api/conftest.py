"""Fixtures of the API tests: tokens of the operator's and of another workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from accounts.models import Workspace
from api.models import ApiToken
from tests.factories import operator_user, operator_workspace, other_workspace_user
from tests.servers import app_server  # noqa: F401  (the fixture of the live tests)


@dataclass
class ApiClient:
    """A test client that sends JSON with a bearer token."""

    token: str
    client: Client

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        for name, value in headers.items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        data = json.dumps(body) if body is not None else None
        return getattr(self.client, method)(
            path, data=data, content_type="application/json", **extra
        )

    def get(self, path: str, **headers: str) -> Any:
        return self.request("get", path, **headers)

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.request("post", path, body if body is not None else {}, **headers)


def issue_token(workspace: Workspace, user: Any, name: str = "test") -> str:
    return ApiToken.issue(workspace.pk, user, name)[1]


@pytest.fixture
def api(db: None) -> ApiClient:
    """An API client with a token of the operator in the operator's workspace."""
    return ApiClient(issue_token(operator_workspace(), operator_user()), Client())


@pytest.fixture
def outsider_api(db: None) -> ApiClient:
    """An API client with a token of another workspace's owner."""
    user = other_workspace_user()
    workspace = Workspace.objects.get(memberships__user=user)
    return ApiClient(issue_token(workspace, user), Client())


@pytest.fixture
def make_api() -> Callable[[str], ApiClient]:
    def make(token: str) -> ApiClient:
        return ApiClient(token, Client())

    return make


CAMPAIGN = {
    "name": "Spring launch",
    "email_subject": "News for {{ first_name|default:'you' }}",
    "email_text": "Hello {{ name|default:'there' }}",
    "sms_text": "Hello {{ first_name|default:'there' }}",
}


def campaign_body(recipients: list[Any], **fields: Any) -> dict[str, Any]:
    return {**CAMPAIGN, "recipients": recipients, **fields}
