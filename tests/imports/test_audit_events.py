"""Confirming, discarding and cancelling an import record one audit event each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from campaigns.models import Campaign
from imports.models import RecipientImport
from tests.imports.conftest import make_import
from tests.outcomes import move_to_status

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]

MAPPING = {"name": "0", "email": "1", "phone": "2", "has_header": "on", "phone_region": "GB"}


def url(name: str, recipient_import: RecipientImport) -> str:
    return reverse(f"imports:{name}", args=[recipient_import.campaign_id, recipient_import.pk])


def events() -> list[tuple[str, str, str]]:
    rows = AuditEvent.objects.order_by("created_at", "id")
    return list(rows.values_list("action", "actor_name", "detail"))


def test_confirm_records_once(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir)

    client.post(url("confirm", recipient_import), MAPPING)
    client.post(url("confirm", recipient_import), MAPPING)

    assert events() == [("import_confirmed", "operator", "“people.csv”")]
    assert AuditEvent.objects.get().campaign_id == recipient_import.campaign_id


def test_confirm_into_dispatched_campaign_records_nothing(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(campaign, import_dir)
    move_to_status(campaign, Campaign.Status.PROCESSING)

    client.post(url("confirm", recipient_import), MAPPING)

    assert events() == []


def test_run_again_records_confirmed(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="failed")

    client.post(url("run_again", recipient_import))

    assert events() == [("import_confirmed", "operator", "“people.csv”, run again after it failed")]


def test_discard_records_once(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir)

    client.post(url("discard", recipient_import))
    client.post(url("discard", recipient_import))

    assert events() == [("import_discarded", "operator", "“people.csv”")]


def test_cancel_records_once(client: Client, make_campaign: MakeCampaign, import_dir: Path) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="queued")

    client.post(url("cancel", recipient_import))
    client.post(url("cancel", recipient_import))

    assert events() == [("import_cancelled", "operator", "“people.csv”")]
