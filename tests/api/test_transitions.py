"""Dispatch, pause, resume and cancel through the API, with 409 for refused transitions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audit.models import AuditEvent
from campaigns.models import Campaign
from imports.models import RecipientImport
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def set_status(campaign: Campaign, status: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)


def test_dispatch_starts_and_enqueues(
    api: ApiClient,
    make_campaign: Any,
    job_queue: Callable[..., list[Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    campaign = make_campaign()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/campaigns/{campaign.pk}/dispatch")

    assert response.status_code == 200, response.content
    assert response.json()["campaign"]["status"] == "processing"
    assert Campaign.objects.get(pk=campaign.pk).status == "processing"
    jobs = [(job["headers"]["task"], job["headers"]["argsrepr"]) for job in job_queue()]
    assert jobs == [("dispatch.start_campaign", f"({campaign.pk},)")]
    event = AuditEvent.objects.get(campaign=campaign, action="dispatched")
    assert event.actor_name == "operator"
    assert event.detail == "through the API"


def test_dispatch_again_is_409(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign()
    set_status(campaign, "processing")

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/dispatch")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["status"] == "processing"


def test_dispatch_without_content_is_409(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign(email_subject="", email_text="", sms_text="")

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/dispatch")

    assert response.status_code == 409
    assert response.json()["code"] == "missing_content"
    assert response.json()["status"] == "pending"
    assert "email" in response.json()["message"]


def test_dispatch_without_recipients_is_409(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign(recipients=[])

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/dispatch")

    assert response.status_code == 409
    assert response.json()["code"] == "no_recipients"


def test_dispatch_during_import_is_409(
    api: ApiClient, make_campaign: Any, settings: Any, tmp_path: Any
) -> None:
    from django.utils import timezone

    campaign = make_campaign()
    RecipientImport.objects.create(
        campaign=campaign,
        status=RecipientImport.Status.QUEUED,
        queued_at=timezone.now(),
        file_name="people.csv",
        stored_name="missing.csv",
        file_size=1,
        encoding="utf-8",
        delimiter=",",
        column_titles=["Email"],
        sample_rows=[],
        email_column=0,
        phone_region="US",
    )

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/dispatch")

    assert response.status_code == 409
    assert response.json()["code"] == "import_running"
    assert Campaign.objects.get(pk=campaign.pk).status == "pending"


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("pause", "processing", "paused"),
        ("resume", "paused", "processing"),
        ("cancel", "processing", "cancelled"),
        ("cancel", "paused", "cancelled"),
    ],
)
def test_transition_allowed(
    api: ApiClient, make_campaign: Any, action: str, start: str, end: str
) -> None:
    campaign = make_campaign()
    set_status(campaign, start)

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/{action}")

    assert response.status_code == 200, response.content
    assert response.json()["campaign"]["status"] == end
    assert Campaign.objects.get(pk=campaign.pk).status == end
    assert AuditEvent.objects.filter(campaign=campaign, actor__username="operator").exists()


@pytest.mark.parametrize(
    ("action", "start"),
    [
        ("pause", "pending"),
        ("resume", "processing"),
        ("cancel", "completed"),
        ("pause", "cancelled"),
    ],
)
def test_transition_refused_is_409(
    api: ApiClient, make_campaign: Any, action: str, start: str
) -> None:
    campaign = make_campaign()
    set_status(campaign, start)

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/{action}")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["status"] == start
    assert Campaign.objects.get(pk=campaign.pk).status == start
