"""Every URL of the app has an access rule, and every state-changing request needs a CSRF token.

The tests walk the URL configuration, so a URL added without a rule here
fails them until someone decides who may open it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.accounts.url_matrix import MATRIX

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("accounts:login")

# Open to anyone: signing in, resetting a password, and the links in messages.
PUBLIC = {
    "accounts:login",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "suppressions:unsubscribe",
    "suppressions:one_click",
    # Probes for load balancers and orchestrators (docs/operations.md).
    "ops:healthz",
    "ops:readyz",
    # 404 unless METRICS_TOKEN is set, and then only with that bearer token.
    "ops:metrics",
    # The API's OpenAPI schema describes endpoints, not data.
    "api:openapi-json",
}
# The JSON API's operations authenticate with bearer tokens, not sessions.
# tests/api/test_route_matrix.py has their matrix, with a case per operation.
# "api-root" at /api/v1/ is no operation: it returns a JSON 404, and
# django-ninja reverses it to find the API's prefix.
API_OPERATIONS = {
    f"api:{name}"
    for name in (
        "api-root",
        "campaigns",
        "campaign_list",
        "campaign",
        "recipients",
        "recipient_list",
        "attempts",
        "dispatch",
        "pause",
        "resume",
        "cancel",
        "stream_url",
    )
}
# Event streams, which return 401 rather than redirect to the sign-in page.
STREAMS = {"live:campaign_stream", "live:index_stream"}
# Views that take a POST without a CSRF token, each for a stated reason.
CSRF_EXEMPT = {
    # RFC 8058: mail clients post without cookies; the signed token is checked.
    "suppressions:one_click",
    # The API ignores session cookies, so a forged cross-site request has no
    # credentials; a POST without a bearer token gets 401.
    "api:openapi-json",
    *API_OPERATIONS,
}
# Pages and actions for signed-in users only; url_matrix.py describes how each is used.
SIGNED_IN = set(MATRIX) - STREAMS
SAMPLE_ARGUMENTS = {"int": "1", "str": "sample", "slug": "sample", "path": "sample"}


@dataclass(frozen=True)
class Route:
    name: str
    path: str


def app_routes() -> Iterator[Route]:
    """Yield every named URL of the app, outside the Django admin, with sample arguments."""

    def walk(
        patterns: list[URLPattern | URLResolver], prefix: str, namespace: str
    ) -> Iterator[Route]:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.app_name == "admin":
                    continue
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner or "")
                continue
            if entry.name is None:
                # Unnamed routes are redirects to named ones.
                continue
            route = prefix + str(entry.pattern)
            for converter, sample in SAMPLE_ARGUMENTS.items():
                route = _fill(route, converter, sample)
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(name=name, path="/" + route)

    yield from walk(get_resolver().url_patterns, "", "")


def _fill(route: str, converter: str, sample: str) -> str:
    return re.sub(rf"<{converter}:\w+>", sample, route)


ROUTES = sorted(app_routes(), key=lambda route: route.name)


def test_every_url_has_a_rule() -> None:
    names = {route.name for route in ROUTES}

    unruled = names - PUBLIC - STREAMS - SIGNED_IN - API_OPERATIONS
    assert not unruled, f"URLs without an access rule in this test: {sorted(unruled)}"
    ruled = PUBLIC | STREAMS | SIGNED_IN | API_OPERATIONS
    assert not ruled - names, "rules for URLs that no longer exist"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in SIGNED_IN], ids=str)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_sent_to_sign_in(anonymous_client: Client, route: Route, method: str) -> None:
    response = getattr(anonymous_client, method)(route.path)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={route.path}"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in STREAMS], ids=str)
def test_anonymous_stream_is_401(anonymous_client: Client, route: Route) -> None:
    response = anonymous_client.get(route.path, HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 401


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in PUBLIC], ids=str)
def test_public_pages_open_without_sign_in(anonymous_client: Client, route: Route) -> None:
    response = anonymous_client.get(route.path)

    # A sample token or link id is invalid, but the view itself responds.
    # The metrics endpoint is off without METRICS_TOKEN, as in these tests.
    expected = {404} if route.name == "ops:metrics" else {200, 400}
    assert response.status_code in expected
    assert not response.get("Location", "").startswith(LOGIN_URL)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in CSRF_EXEMPT], ids=str)
def test_post_without_csrf_token_is_403(signed_in: Callable[..., Client], route: Route) -> None:
    client = signed_in(enforce_csrf_checks=True)

    response = client.post(route.path, {"name": "x"})

    assert response.status_code == 403
