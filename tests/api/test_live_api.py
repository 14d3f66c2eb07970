"""The API under uvicorn: schemathesis against its own schema, and signed stream URLs."""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.models import ApiToken
from campaigns.models import Campaign, Recipient
from tests.factories import MESSAGE_CONTENT, operator_user, operator_workspace

# Examples per operation: with 11 operations, the whole run took about
# 40 s on a 2-core machine.
MAX_EXAMPLES = 25
# The check that every schema-valid request succeeds is left out: a JSON
# schema cannot say which templates compile or which addresses are valid,
# so a 422 for those is correct, and every other check still runs.


def issue() -> str:
    return ApiToken.issue(operator_workspace().pk, operator_user(), "schemathesis")[1]


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_errors(app_server: str) -> None:
    token = issue()
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Fuzzed", **MESSAGE_CONTENT
    )
    Recipient.objects.create(campaign=campaign, email="ada@example.com")
    schema = schemathesis.openapi.from_url(f"{app_server}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 11

    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(), data=st.data())
        def check(case: Any, data: Any) -> None:
            case.call_and_validate(
                base_url=app_server, headers=headers, excluded_checks=[positive_data_acceptance]
            )

        check()


def fetch(base_url: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `path` and return the status and the first bytes of the body."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    try:
        connection.request("GET", path, headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        body = response.read(200) if response.status != 200 else response.read1(200)
        return response.status, body
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_stream_url_opens_stream_without_session(app_server: str) -> None:
    import json

    token = issue()
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Live", **MESSAGE_CONTENT
    )
    parts = urlsplit(app_server)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    connection.request(
        "POST",
        f"/api/v1/campaigns/{campaign.pk}/stream-url",
        headers={"Authorization": f"Bearer {token}"},
    )
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 200
    url = body["url"]
    assert url.startswith(f"/campaigns/{campaign.pk}/stream?access=")

    status, _ = fetch(app_server, url)
    other = Campaign.objects.create(workspace=operator_workspace(), name="Other", **MESSAGE_CONTENT)
    other_status, _ = fetch(
        app_server, url.replace(f"/campaigns/{campaign.pk}/", f"/campaigns/{other.pk}/")
    )
    forged_status, _ = fetch(app_server, url[:-3] + "xyz")

    assert status == 200
    assert other_status == 401
    assert forged_status == 401


@pytest.mark.django_db(transaction=True)
def test_stream_url_stops_when_member_leaves(app_server: str) -> None:
    from accounts.models import Membership
    from live.access import StreamAccess, sign_access

    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Left", **MESSAGE_CONTENT
    )
    user = operator_user()
    value = sign_access(StreamAccess(campaign.pk, user.pk, operator_workspace().pk))
    Membership.objects.filter(user=user).delete()

    status, _ = fetch(app_server, f"/campaigns/{campaign.pk}/stream?access={value}")

    assert status == 401


def test_expired_stream_access_is_rejected(settings: Any) -> None:
    from live.access import StreamAccess, read_access, sign_access

    settings.API_STREAM_URL_MAX_AGE_SECONDS = 1
    value = sign_access(StreamAccess(7, 1, 1))
    assert read_access(value, 7) == StreamAccess(7, 1, 1)
    assert read_access(value, 8) is None

    time.sleep(2.1)

    assert read_access(value, 7) is None


def test_logs_redact_stream_access() -> None:
    from suppressions.redaction import redact

    line = '127.0.0.1 - "GET /campaigns/4/stream?ids=1,2&access=eyJjIjo0fQ:1vR:abc HTTP/1.1" 200'

    assert (
        redact(line)
        == '127.0.0.1 - "GET /campaigns/4/stream?ids=1,2&access=[redacted] HTTP/1.1" 200'
    )
    assert "abc" not in redact("/campaigns/4/stream%3Faccess%3DeyJj%3Aabc")
