"""Dispatch waits for a running import, and an import never writes into a dispatched campaign."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import reverse

from campaigns.models import Campaign, Recipient
from imports.jobs import run_import
from imports.models import RecipientImport
from tests.factories import MESSAGE_CONTENT, operator_workspace

CSV = "name,email,phone\nAda,ada@example.com,\n"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [RecipientImport.Status.QUEUED, RecipientImport.Status.RUNNING])
def test_dispatch_rejected_during_import(client: Any, queued_import: Any, status: str) -> None:
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Launch", **MESSAGE_CONTENT
    )
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    queued_import(campaign, CSV, status=status)

    response = client.post(reverse("campaigns:dispatch", args=[campaign.pk]), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert "An import into this campaign is still running" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [
        RecipientImport.Status.MAPPING,
        RecipientImport.Status.COMPLETED,
        RecipientImport.Status.FAILED,
        RecipientImport.Status.CANCELLED,
    ],
)
def test_finished_imports_allow_dispatch(queued_import: Any, status: str) -> None:
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Launch", **MESSAGE_CONTENT
    )
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    queued_import(campaign, CSV, status=status)

    assert campaign.start() is True


@pytest.mark.django_db
def test_file_only_campaign_waits_for_import(
    queued_import: Any,
) -> None:
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Launch", **MESSAGE_CONTENT
    )
    recipient_import = queued_import(campaign, CSV)

    assert campaign.start() is False

    run_import(recipient_import.pk)
    assert campaign.start() is True


@pytest.mark.django_db(transaction=True)
def test_dispatch_waits_for_queueing_import(queued_import: Any) -> None:
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Launch", **MESSAGE_CONTENT
    )
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    locked = threading.Event()
    release = threading.Event()

    def queue_an_import() -> None:
        # As the confirm view does: lock the campaign, then queue the import.
        try:
            with transaction.atomic():
                list(Campaign.objects.select_for_update().filter(pk=campaign.pk))
                locked.set()
                release.wait(10)
                queued_import(campaign, CSV)
        finally:
            connection.close()

    thread = threading.Thread(target=queue_an_import)
    thread.start()
    assert locked.wait(10)
    outcome: list[bool] = []

    def dispatch() -> None:
        try:
            outcome.append(Campaign.objects.get(pk=campaign.pk).start())
        finally:
            connection.close()

    dispatcher = threading.Thread(target=dispatch)
    dispatcher.start()
    # The dispatch blocks on the campaign's row lock until the import commits.
    dispatcher.join(0.5)
    assert dispatcher.is_alive()
    release.set()
    thread.join(10)
    dispatcher.join(10)

    assert outcome == [False]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
