"""Every API operation: its owner's token succeeds, another workspace's token gets 404,
and a request without a token gets 401.

The tests walk the API's OpenAPI schema, so an operation added without a
case in CASES fails test_every_operation_has_a_case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Campaign, Recipient
from tests.api.conftest import ApiClient, campaign_body
from tests.factories import MESSAGE_CONTENT, operator_workspace

pytestmark = pytest.mark.django_db


@dataclass
class World:
    campaign: Campaign  # pending, with one recipient
    processing: Campaign
    paused: Campaign
    recipient: Recipient


def build_world() -> World:
    def make(name: str, status: str = "pending") -> Campaign:
        campaign = Campaign.objects.create(
            workspace=operator_workspace(), name=name, **MESSAGE_CONTENT
        )
        Recipient.objects.create(campaign=campaign, name="Ada", email="ada@example.com")
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        return campaign

    campaign = make("Pending")
    return World(
        campaign=campaign,
        processing=make("Processing", "processing"),
        paused=make("Paused", "paused"),
        recipient=campaign.recipients.get(),
    )


@dataclass(frozen=True)
class Case:
    path: Callable[[World], str]
    status: int
    body: Any = None
    scoped: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def _campaign(world: World) -> str:
    return f"/api/v1/campaigns/{world.campaign.pk}"


CASES: dict[str, Case] = {
    "POST /api/v1/campaigns": Case(
        lambda world: "/api/v1/campaigns",
        201,
        body=campaign_body([{"email": "new@example.com"}]),
        scoped=False,
    ),
    "GET /api/v1/campaigns": Case(lambda world: "/api/v1/campaigns", 200, scoped=False),
    "GET /api/v1/campaigns/{campaign_id}": Case(_campaign, 200),
    "POST /api/v1/campaigns/{campaign_id}/recipients": Case(
        lambda world: f"{_campaign(world)}/recipients",
        201,
        body={"recipients": [{"email": "grace@example.com"}]},
    ),
    "GET /api/v1/campaigns/{campaign_id}/recipients": Case(
        lambda world: f"{_campaign(world)}/recipients", 200
    ),
    "GET /api/v1/campaigns/{campaign_id}/recipients/{recipient_id}/attempts": Case(
        lambda world: f"{_campaign(world)}/recipients/{world.recipient.pk}/attempts", 200
    ),
    "POST /api/v1/campaigns/{campaign_id}/dispatch": Case(
        lambda world: f"{_campaign(world)}/dispatch", 200
    ),
    "POST /api/v1/campaigns/{campaign_id}/pause": Case(
        lambda world: f"/api/v1/campaigns/{world.processing.pk}/pause", 200
    ),
    "POST /api/v1/campaigns/{campaign_id}/resume": Case(
        lambda world: f"/api/v1/campaigns/{world.paused.pk}/resume", 200
    ),
    "POST /api/v1/campaigns/{campaign_id}/cancel": Case(
        lambda world: f"/api/v1/campaigns/{world.processing.pk}/cancel", 200
    ),
    "POST /api/v1/campaigns/{campaign_id}/stream-url": Case(
        lambda world: f"{_campaign(world)}/stream-url", 200
    ),
}


def schema_operations() -> set[str]:
    schema = Client().get("/api/v1/openapi.json").json()
    return {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
    }


def snapshot() -> list[Any]:
    return [
        list(Campaign.objects.order_by("id").values_list("id", "name", "status")),
        list(Recipient.objects.order_by("id").values_list("id", "email", "status")),
    ]


def send(client: ApiClient, operation: str, world: World) -> Any:
    method, _ = operation.split(" ", 1)
    case = CASES[operation]
    if method == "GET":
        return client.get(case.path(world))
    return client.post(case.path(world), case.body)


def test_every_operation_has_a_case() -> None:
    operations = schema_operations()

    assert operations - set(CASES) == set(), "API operations without a case in CASES"
    assert set(CASES) - operations == set(), "cases for operations that no longer exist"


@pytest.mark.parametrize("operation", sorted(CASES))
def test_own_workspace_succeeds(api: ApiClient, operation: str) -> None:
    world = build_world()

    response = send(api, operation, world)

    assert response.status_code == CASES[operation].status, response.content


@pytest.mark.parametrize("operation", sorted(op for op, case in CASES.items() if case.scoped))
def test_other_workspace_gets_404(outsider_api: ApiClient, operation: str) -> None:
    world = build_world()
    before = snapshot()

    response = send(outsider_api, operation, world)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert snapshot() == before


@pytest.mark.parametrize("operation", sorted(CASES))
def test_without_token_is_401(operation: str) -> None:
    world = build_world()
    before = snapshot()

    response = send(ApiClient("", Client()), operation, world)

    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert snapshot() == before


def test_other_workspace_campaign_not_listed(api: ApiClient, outsider_api: ApiClient) -> None:
    world = build_world()

    listed = outsider_api.get("/api/v1/campaigns").json()["items"]

    assert world.campaign.pk not in [item["id"] for item in listed]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/", 404, "not_found"),
        ("get", "/api/v1/unknown", 404, "not_found"),
        ("get", "/api/v1/campaigns/99999999", 404, "not_found"),
        ("put", "/api/v1/campaigns", 405, "method_not_allowed"),
        ("delete", "/api/v1/campaigns/1/dispatch", 405, "method_not_allowed"),
    ],
)
def test_errors_are_json(api: ApiClient, method: str, path: str, status: int, code: str) -> None:
    response = api.request(method, path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["message"]


def test_schema_is_public(db: None) -> None:
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert "/api/v1/campaigns" in response.json()["paths"]
    schemes = response.json()["components"]["securitySchemes"]
    assert schemes["TokenAuth"] == {"type": "http", "scheme": "bearer"}
