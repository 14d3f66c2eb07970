"""Starting a dispatched campaign: the planning step under the campaign's advisory lock."""

from __future__ import annotations

import pytest
from django.db import connection

from dispatch.locks import ADVISORY_LOCK_NAMESPACE
from dispatch.tasks import start_campaign

pytestmark = pytest.mark.django_db


def test_start_wakes_worker_loops(make_campaign, job_queue, settings):
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 3
    campaign = make_campaign()
    campaign.start()

    assert start_campaign(campaign.pk)

    tasks = [job["headers"]["task"] for job in job_queue()]
    assert tasks == ["dispatch.process_campaign"] * 3


def test_start_skips_when_lock_is_held(make_campaign, job_queue, other_session_lock):
    campaign = make_campaign()
    campaign.start()
    other_session_lock(campaign.pk)

    assert not start_campaign(campaign.pk)

    assert job_queue() == []


def test_start_ignores_pending_campaign(make_campaign, job_queue):
    campaign = make_campaign()

    assert not start_campaign(campaign.pk)

    assert job_queue() == []


def test_start_releases_lock(make_campaign):
    campaign = make_campaign()
    campaign.start()

    start_campaign(campaign.pk)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objid = %s",
            [ADVISORY_LOCK_NAMESPACE, campaign.pk],
        )
        assert cursor.fetchone()[0] == 0
