"""A hundred concurrent dispatch requests for one campaign, with workers running.

The view's conditional UPDATE lets one request win and enqueue the start job,
and the others see a campaign that is already processing. Workers must start the
campaign once and deliver each recipient once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from tests.faults.cluster import wait_for
from tests.faults.conftest import assert_each_sent_once, campaign_status

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 500
REQUESTS = 100
# Requests that may hold a database connection at once. Each request opens
# its own, and PostgreSQL's default max_connections is 100, shared with the
# workers and with other test runs on the same server.
# NOTE: so only the first 50 requests race for the UPDATE at once, and later
# ones may find the campaign already processing.
MAX_CONCURRENT_REQUESTS = 50
REQUEST_TIMEOUT_SECONDS = 60.0
FINISH_TIMEOUT_SECONDS = 90.0


def test_concurrent_dispatches_start_once(
    signed_in: Callable[..., Client], create_campaign, dispatch_cluster, delivery_records, caplog
):
    # Without beat, no sweep wakes the campaign before the start job runs, so
    # that job certainly finds it processing and logs that it started it.
    cluster = dispatch_cluster(workers=2, beat=False)
    campaign = create_campaign(RECIPIENTS)
    cluster.wait_until_ready()
    url = reverse("campaigns:dispatch", args=[campaign.pk])
    barrier = threading.Barrier(REQUESTS)
    gate = threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=REQUEST_TIMEOUT_SECONDS)
            with gate:
                statuses.append(signed_in().post(url).status_code)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(REQUESTS)]
    with caplog.at_level(logging.INFO, logger="campaigns"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS)

    # Every request should get a redirect, and exactly one should start the campaign.
    assert errors == []
    assert statuses == [303] * REQUESTS
    requested = [r for r in caplog.records if r.getMessage().endswith("dispatch requested")]
    assert len(requested) == 1

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete: {campaign.progress()}",
        cluster,
    )

    # Workers should receive and run one start job.
    assert cluster.count_in_logs(r"Task dispatch\.start_campaign\[\S+\] received") == 1
    assert cluster.count_in_logs(f"campaign {campaign.pk}: dispatch started$") == 1

    # It should deliver every recipient exactly once.
    assert_each_sent_once(campaign, delivery_records, RECIPIENTS)
