"""The import messages on the campaign's own pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from imports.jobs import run_import
from imports.models import RecipientImport
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

CSV = "name,email,phone\nAda,ada@example.com,\n"


def test_header_only_report_text(client: Client, queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, "name,email,phone\n")
    run_import(recipient_import.pk)

    page = client.get(recipient_import.get_absolute_url()).content.decode()

    assert "The file has no data rows, so nothing was added." in page
    assert "Every row of the file was added." not in page


def test_delete_page_mentions_import(client: Client, queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    queued_import(campaign, CSV, status=RecipientImport.Status.RUNNING)

    page = client.get(reverse("campaigns:delete", args=[campaign.pk])).content.decode()

    assert "its 1 recipient will be removed" in page
    assert "The import of “recipients.csv” that is still running stops" in page


def test_duplicate_during_import_warns(client: Client, queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    queued_import(campaign, CSV, status=RecipientImport.Status.RUNNING)

    response = client.post(reverse("campaigns:duplicate", args=[campaign.pk]), follow=True)

    assert "its rows go to the original only" in response.content.decode()
