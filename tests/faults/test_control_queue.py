"""The sweep runs on the control queue while worker loops occupy every thread of a worker.

Worker loops run for as long as their campaign has work, so a worker whose
threads all run loops fetches no other message. The start and sweep tasks go
to a control queue of their own, and a small worker that consumes only that
queue runs them in the meantime.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from campaigns.models import Campaign
from dispatch.tasks import dispatch_campaign_later
from tests.faults.cluster import start_worker, wait_for
from tests.faults.providers import DELAY_MAX_VARIABLE, DELAY_MIN_VARIABLE

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# The busy campaign: two loops that claim and deliver one recipient at a
# time, 0.5 s each, take about 50 s for 200 recipients, far longer than the
# test waits for a sweep. With larger batches, the first loop would claim
# every recipient and the second would find nothing and exit.
BUSY_RECIPIENTS = 200
LOOP_THREADS = 2
START_TIMEOUT_SECONDS = 40.0
SWEEP_TIMEOUT_SECONDS = 20.0


def test_sweep_runs_while_loops_fill_worker(create_campaign, dispatch_cluster):
    cluster = dispatch_cluster(
        workers=1,
        environment={
            "DISPATCH_WORKERS_PER_CAMPAIGN": str(LOOP_THREADS),
            "DELIVERY_CONCURRENCY": "1",
            "DISPATCH_BATCH_SIZE": "1",
            DELAY_MIN_VARIABLE: "0.5",
            DELAY_MAX_VARIABLE: "0.5",
        },
    )
    [loop_worker] = cluster.workers
    assert loop_worker.concurrency == LOOP_THREADS
    control_worker = start_worker(
        cluster, "control", queues=(settings.DISPATCH_CONTROL_QUEUE,), concurrency=1
    )
    busy = create_campaign(BUSY_RECIPIENTS)
    waiting = create_campaign(3)
    cluster.wait_until_ready()

    assert busy.start()
    dispatch_campaign_later(busy.pk)
    wait_for(
        lambda: cluster.count_in_logs(f"campaign {busy.pk}: worker loop started") == LOOP_THREADS,
        START_TIMEOUT_SECONDS,
        lambda: f"the busy campaign did not start {LOOP_THREADS} loops: {busy.progress()}",
        cluster,
    )
    # A processing campaign whose start message was lost: only a sweep wakes it.
    assert waiting.start()
    wait_for(
        lambda: cluster.count_in_logs(rf"sweep: .*woke campaigns \[{waiting.pk}\]") > 0,
        SWEEP_TIMEOUT_SECONDS,
        lambda: "no sweep woke the campaign whose start message was lost",
        cluster,
    )
    busy_loops_finished = cluster.count_in_logs(f"campaign {busy.pk}: worker loop finished")
    waiting_loops_started = cluster.count_in_logs(f"campaign {waiting.pk}: worker loop started")
    control_sweeps = sum(
        1
        for line in control_worker.log_text().splitlines()
        if "Task dispatch.sweep[" in line and "] received" in line
    )

    # The sweep should have run while both loops still occupied the loop worker.
    assert busy_loops_finished == 0
    assert waiting_loops_started == 0
    assert control_sweeps > 0

    # Cancelled campaigns end their loops within a delivery, so teardown is quick.
    assert busy.cancel()
    assert waiting.cancel()
    assert Campaign.objects.get(pk=busy.pk).status == Campaign.Status.CANCELLED
