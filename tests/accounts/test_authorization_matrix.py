"""Who may use each URL: the right workspace succeeds, another workspace gets 404.

The anonymous column of the matrix, and the check that every URL has a
case, are in test_url_rules.py. Every case here runs against a World of
real objects in the operator's workspace (tests/accounts/url_matrix.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Workspace
from audit.models import AuditEvent
from campaigns.models import Campaign, Recipient
from imports.models import RecipientImport
from suppressions.models import Suppression
from tests.accounts.url_matrix import MATRIX, World, build_world
from tests.factories import other_workspace_user

# Async views. Their tests commit the data and send each request from a
# thread of its own: sync Playwright leaves an event loop marked as running
# in the main thread once a browser test has run, and the test client's
# async_to_sync rejects that thread. Export and report also close the
# database connection after each read, which would end a test transaction.
ASYNC_VIEWS = {"campaigns:export", "imports:report", "live:campaign_stream", "live:index_stream"}


def names(*, scoped_only: bool = False) -> list[Any]:
    """The matrix's URL names as parameters, each marked for the database it needs."""
    return [
        pytest.param(
            name,
            marks=pytest.mark.django_db(transaction=name in ASYNC_VIEWS),
            id=name,
        )
        for name, case in sorted(MATRIX.items())
        if case.scoped or not scoped_only
    ]


@pytest.fixture
def world(settings: Any, tmp_path: Path) -> World:
    settings.IMPORT_FILES_DIR = tmp_path / "imports"
    return build_world(settings.IMPORT_FILES_DIR)


@pytest.fixture
def outsider() -> Client:
    """A client signed in as the owner of another workspace."""
    client = Client()
    client.force_login(other_workspace_user())
    return client


def url(name: str, world: World) -> str:
    case = MATRIX[name]
    return reverse(name, args=case.args(world)) + case.query(world)


def send(client: Client, method: str, name: str, world: World, data: Any = None) -> Any:
    """Send the request for URL `name`, from a new thread for an async view."""

    def request() -> Any:
        response = getattr(client, method)(url(name, world), data or {})
        close(response)
        return response

    if name not in ASYNC_VIEWS:
        return request()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(request).result()


def close(response: Any) -> None:
    """Close a streamed response without reading it, as a browser that leaves would."""
    if isinstance(response, StreamingHttpResponse):
        response.close()


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything that a request of another workspace must leave as it was."""
    return {
        "workspaces": list(Workspace.objects.order_by("id").values_list("id", "name")),
        "memberships": list(Membership.objects.order_by("id").values_list("id", "role")),
        "campaigns": list(Campaign.objects.order_by("id").values_list("id", "name", "status")),
        "recipients": list(Recipient.objects.order_by("id").values_list("id", "name", "status")),
        "imports": list(RecipientImport.objects.order_by("id").values_list("id", "status")),
        "suppressions": list(Suppression.objects.order_by("id").values_list("id", "email")),
        "audit": list(AuditEvent.objects.order_by("id").values_list("id")),
    }


@pytest.mark.parametrize("name", names())
def test_right_workspace_get(client: Client, world: World, name: str) -> None:
    case = MATRIX[name]

    response = send(client, "get", name, world)

    assert response.status_code == (case.get or 405)
    if case.stream:
        assert response["Content-Type"].startswith("text/event-stream")


@pytest.mark.parametrize("name", names())
def test_right_workspace_post(client: Client, world: World, name: str) -> None:
    case = MATRIX[name]
    if case.post is None:
        assert send(client, "post", name, world).status_code == 405
        return

    case.prepare(world, client)
    response = send(client, "post", name, world, case.post(world))

    assert response.status_code == case.post_status
    assert case.effect is not None and case.effect(world, client), "the POST changed nothing"


@pytest.mark.parametrize("name", names(scoped_only=True))
@pytest.mark.parametrize("method", ["get", "post"])
def test_other_workspace_gets_404(outsider: Client, world: World, name: str, method: str) -> None:
    case = MATRIX[name]
    allowed = case.get if method == "get" else case.post
    data = case.post(world) if method == "post" and case.post is not None else {}
    before = snapshot()

    response = send(outsider, method, name, world, data)

    assert response.status_code == (404 if allowed is not None else 405)
    assert snapshot() == before


@pytest.mark.django_db
def test_other_workspace_names_are_not_shown(outsider: Client, world: World) -> None:
    index = outsider.get(reverse("campaigns:index")).content.decode()
    suppressions = outsider.get(reverse("suppressions:index")).content.decode()

    assert world.pending.name not in index
    assert "Outsider workspace" in index
    assert world.suppression.email not in suppressions
