"""The create_demo_campaign management command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, Recipient
from dispatch.engine import run_campaign

pytestmark = pytest.mark.django_db


def test_demo_creates_pending_campaign(settings):
    out = StringIO()

    call_command("create_demo_campaign", stdout=out)

    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.PENDING
    assert campaign.recipients.count() == 25
    failing = campaign.recipients.filter(
        email__endswith="@" + settings.DELIVERY_FAIL_EMAIL_DOMAIN
    ).count()
    assert 0 < failing < 25
    assert f"/campaigns/{campaign.pk}" in out.getvalue()


def test_demo_mixes_email_and_phone_recipients():
    call_command("create_demo_campaign", stdout=StringIO())

    recipients = Recipient.objects.all()
    assert recipients.filter(email="").exists()
    assert recipients.filter(phone_number="").exists()
    assert recipients.exclude(email="").exclude(phone_number="").exists()


def test_demo_dispatch_shows_sent_and_failed():
    call_command("create_demo_campaign", "--name", "Demo run", stdout=StringIO())
    campaign = Campaign.objects.get(name="Demo run")
    campaign.start()

    run_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.progress().failed == 4
    assert campaign.progress().sent == 21
