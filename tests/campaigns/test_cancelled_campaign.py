"""A campaign cancelled while pending was never dispatched, and its messages state that."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from tests.campaigns.campaign_form import existing_rows, form_data

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

CANNOT_DISPATCH = "This campaign was cancelled, so it cannot be dispatched."
CANNOT_EDIT = "This campaign was cancelled, so it can no longer be edited or deleted."
NOTICE = "This campaign was cancelled, so its recipients are read-only."


@pytest.fixture
def cancelled(make_campaign: MakeCampaign) -> Campaign:
    campaign = make_campaign()
    assert campaign.cancel()
    assert campaign.started_at is None
    return campaign


def flash_messages(response: TestResponse) -> list[tuple[str, str]]:
    """The (level, text) of each message shown on the page that the redirect led to."""
    html = response.content.decode()
    return re.findall(r'<li class="flash flash-(\w+)" role="status">(.*?)</li>', html)


def test_dispatch_reports_cancelled(client: Client, cancelled: Campaign) -> None:
    response = client.post(reverse("campaigns:dispatch", args=[cancelled.pk]), follow=True)

    assert response.redirect_chain == [(cancelled.get_absolute_url(), 303)]
    assert flash_messages(response) == [("error", CANNOT_DISPATCH)]
    assert "already dispatched" not in response.content.decode()
    cancelled.refresh_from_db()
    assert cancelled.status == Campaign.Status.CANCELLED
    assert cancelled.started_at is None


def test_edit_page_reports_cancelled(client: Client, cancelled: Campaign) -> None:
    response = client.get(reverse("campaigns:edit", args=[cancelled.pk]), follow=True)

    assert response.redirect_chain == [(cancelled.get_absolute_url(), 303)]
    assert flash_messages(response) == [("error", CANNOT_EDIT)]
    assert "dispatched" not in response.content.decode()


def test_edit_post_reports_cancelled(client: Client, cancelled: Campaign) -> None:
    rows = existing_rows(cancelled)
    rows[0]["email"] = "changed@example.com"

    response = client.post(
        reverse("campaigns:edit", args=[cancelled.pk]),
        form_data("Renamed", rows, initial_forms=3),
        follow=True,
    )

    assert flash_messages(response) == [("error", CANNOT_EDIT)]
    cancelled.refresh_from_db()
    assert cancelled.name == "Spring launch"
    assert not cancelled.recipients.filter(email="changed@example.com").exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_delete_reports_cancelled(client: Client, cancelled: Campaign, method: str) -> None:
    url = reverse("campaigns:delete", args=[cancelled.pk])

    response = getattr(client, method)(url, follow=True)

    assert flash_messages(response) == [("error", CANNOT_EDIT)]
    assert Campaign.objects.filter(pk=cancelled.pk).exists()


def test_page_notice_reports_cancelled(client: Client, cancelled: Campaign) -> None:
    html = client.get(cancelled.get_absolute_url()).content.decode()

    assert NOTICE in html
    assert "dispatched" not in html
