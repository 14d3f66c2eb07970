"""The data migration that stores existing phone numbers in E.164."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from campaigns.models import Campaign, Recipient
from tests.factories import operator_workspace

migration = importlib.import_module("campaigns.migrations.0008_phone_numbers_e164")

pytestmark = pytest.mark.django_db


def stored(campaign: Campaign) -> list[str]:
    return list(campaign.recipients.order_by("id").values_list("phone_number", flat=True))


def test_numbers_become_e164_unless_taken_or_invalid(settings) -> None:
    settings.PHONE_DEFAULT_REGION = "US"
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Old data")
    other = Campaign.objects.create(workspace=operator_workspace(), name="Other")
    # As earlier versions stored them: typed digits without separators.
    # update() skips Recipient.save(), which would normalise them now.
    old_values = ["2025550101", "+12025550102", "(202)5550101", "12345", "+1202555010x"]
    for value in old_values:
        recipient = Recipient.objects.create(campaign=campaign, email=f"{len(value)}{value}@x.org")
        Recipient.objects.filter(pk=recipient.pk).update(phone_number=value)
    kept = Recipient.objects.create(campaign=other, email="a@example.com")
    Recipient.objects.filter(pk=kept.pk).update(phone_number="2025550102")

    migration.to_e164(apps, None)

    assert stored(campaign) == [
        "+12025550101",
        "+12025550102",
        # Would be the same number as the first row: left as it was.
        "(202)5550101",
        "12345",
        "+1202555010x",
    ]
    # Another campaign's number is not a conflict.
    assert stored(other) == ["+12025550102"]
