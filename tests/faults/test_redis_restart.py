"""Redis restarted in the middle of a dispatch, losing every queued message and rate-limit bucket.

Redis stores the Celery queue, the rate limiter and the live-update channel,
and the private one here keeps nothing on disk. PostgreSQL stores the state of
every recipient, so once workers are connected again, the sweep wakes what
the lost messages would have woken, and the campaign completes.

kombu 5.7.0 makes a worker exit when Redis goes away while the worker waits
for messages and has an unacknowledged one. The engine sends no delayed
message and acknowledges each as its task starts, so the last tests restart
Redis under a running loop and under a loop that waits for a retry, and the
worker must reconnect and finish the campaign.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from tests.faults.cluster import CeleryProcess, DispatchCluster, wait_for
from tests.faults.conftest import (
    PrivateRedisServer,
    assert_each_sent_once,
    campaign_status,
    enqueue_start,
    needs_redis_server,
)
from tests.faults.providers import (
    DELAY_MAX_VARIABLE,
    DELAY_MIN_VARIABLE,
    TRANSIENT_EVERY_VARIABLE,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), needs_redis_server]

RECIPIENTS = 3_000
RESTART_AFTER_PROCESSED = 1_000
# Every delivery takes a token from the campaign's rate-limit bucket in Redis.
# The rate is above the 200 to 400 deliveries per second measured on a 2-CPU
# machine, so the limit adds Redis calls without slowing the test.
RATE_LIMIT_PER_SECOND = 1_000.0
# Every 100th recipient fails transiently on its first attempt, so retries
# are pending when Redis goes away.
TRANSIENT_EVERY = 100
START_TIMEOUT_SECONDS = 40.0
OUTAGE_TIMEOUT_SECONDS = 15.0
FINISH_TIMEOUT_SECONDS = 90.0


# The campaign of the retry test: every 10th recipient is retried after 4 to
# 8 s. Loops exit rather than wait for a retry more than one sweep interval
# (1 s here) away, which leaves time for all of them to finish their first pass.
RETRY_RECIPIENTS = 300
RETRY_TRANSIENT_EVERY = 10
RETRY_SECONDS = 8
# A worker retries its broker connection every 2 s at first.
RECONNECT_TIMEOUT_SECONDS = 20.0

# The campaign of the waiting-loop test: its 3 retries come 6 to 12 s after
# the first pass, within the loop's wait of one sweep interval (30 s here).
WAIT_RECIPIENTS = 30
WAIT_RETRY_SECONDS = 12
WAIT_SWEEP_INTERVAL_SECONDS = 30

# The campaign of the running-loop test: one loop delivers two messages at a
# time, 0.5 s each, so it runs for about 15 s, and its worker has a second,
# idle thread that keeps polling the broker.
LOOP_RECIPIENTS = 60
LOOP_RESTART_AFTER_PROCESSED = 4


def private_broker(private_redis: PrivateRedisServer) -> dict[str, str]:
    """Point the queue, the rate limits and the live updates of workers at the private Redis."""
    return {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url}


def restart(private_redis: PrivateRedisServer, cluster: DispatchCluster) -> datetime:
    """Stop Redis, keep it down until a worker has noticed, and start an empty one.

    Returns when Redis was stopped.
    """
    noticed_before = cluster.count_in_logs("Connection to broker lost")
    stopped_at = timezone.now()
    private_redis.stop()
    # No liveness check here: a worker may exit right after it logs the loss,
    # and the caller decides whether that fails the test.
    wait_for(
        lambda: cluster.count_in_logs("Connection to broker lost") > noticed_before,
        OUTAGE_TIMEOUT_SECONDS,
        lambda: "no worker logged the loss of its broker connection",
    )
    private_redis.start()
    return stopped_at


def expect_reconnect(cluster: DispatchCluster, worker: CeleryProcess) -> None:
    """Wait until the worker connects to Redis again, and check that it did not exit instead."""
    wait_for(
        lambda: not worker.is_running() or cluster.count_in_logs("Connected to redis") > 1,
        RECONNECT_TIMEOUT_SECONDS,
        lambda: "the worker neither exited nor reconnected after the restart",
    )
    assert worker.is_running(), (
        f"the worker exited with code {worker.process.returncode} after the restart:\n"
        f"{worker.log_tail()}"
    )


def test_dispatch_survives_redis_restart(
    create_campaign, private_redis, dispatch_cluster, delivery_records
):
    cluster = dispatch_cluster(
        workers=2,
        environment={
            **private_broker(private_redis),
            TRANSIENT_EVERY_VARIABLE: str(TRANSIENT_EVERY),
            "DELIVERY_RETRY_BASE_SECONDS": "0.5",
            "DELIVERY_RETRY_MAX_SECONDS": "2",
        },
    )
    campaign = create_campaign(RECIPIENTS, rate_limit_per_second=RATE_LIMIT_PER_SECOND)
    cluster.wait_until_ready()
    assert campaign.start()
    enqueue_start(campaign.pk, private_redis.url)

    wait_for(
        lambda: campaign.progress().processed >= RESTART_AFTER_PROCESSED,
        START_TIMEOUT_SECONDS,
        lambda: f"{RESTART_AFTER_PROCESSED} recipients were not processed: {campaign.progress()}",
        cluster,
    )
    progress_at_restart = campaign.progress()
    restart(private_redis, cluster)

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the restart: {campaign.progress()}",
        cluster,
    )

    # The restart should have happened mid-way, with recipients still to send.
    assert progress_at_restart.queued + progress_at_restart.in_flight > 0

    # It should deliver every recipient exactly once and record each as sent.
    assert_each_sent_once(campaign, delivery_records, RECIPIENTS)


def test_sweep_starts_retries_after_restart(
    create_campaign, private_redis, dispatch_cluster, delivery_records
):
    # No supervisor: a worker that exits fails the test.
    cluster = dispatch_cluster(
        workers=2,
        environment={
            **private_broker(private_redis),
            TRANSIENT_EVERY_VARIABLE: str(RETRY_TRANSIENT_EVERY),
            "DELIVERY_RETRY_BASE_SECONDS": str(RETRY_SECONDS),
            "DELIVERY_RETRY_MAX_SECONDS": str(RETRY_SECONDS),
        },
    )
    campaign = create_campaign(RETRY_RECIPIENTS)
    cluster.wait_until_ready()
    assert campaign.start()
    enqueue_start(campaign.pk, private_redis.url)

    # Every loop ends once only retries more than a sweep interval away are
    # left. Only the database records them, not Redis.
    def first_pass_done() -> bool:
        loops = cluster.count_in_logs(f"campaign {campaign.pk}: worker loop started")
        finished = cluster.count_in_logs(f"campaign {campaign.pk}: worker loop finished")
        progress = campaign.progress()
        return loops > 0 and finished == loops and progress.in_flight == 0

    wait_for(
        first_pass_done,
        START_TIMEOUT_SECONDS,
        lambda: f"the worker loops did not finish their first pass: {campaign.progress()}",
        cluster,
    )
    retries = campaign.recipients.filter(status=Recipient.Status.QUEUED)
    retry_ids = set(retries.values_list("id", flat=True))
    earliest_retry = min(retries.values_list("next_attempt_at", flat=True))
    woken_before = cluster.count_in_logs(rf"sweep: .*woke campaigns \[{campaign.pk}\]")
    stopped_at = restart(private_redis, cluster)

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the restart: {campaign.progress()}",
        cluster,
    )

    # Only the retries should have been left when Redis stopped, none of them due.
    all_ids = campaign.recipients.values_list("id", flat=True)
    assert retry_ids == {pk for pk in all_ids if pk % RETRY_TRANSIENT_EVERY == 0}
    assert earliest_retry > stopped_at

    # The sweep should have woken the campaign after the restart.
    assert cluster.count_in_logs(rf"sweep: .*woke campaigns \[{campaign.pk}\]") > woken_before

    # It should deliver every recipient exactly once and record each as sent.
    assert_each_sent_once(campaign, delivery_records, RETRY_RECIPIENTS)


def test_worker_survives_restart_during_loop(
    create_campaign, private_redis, dispatch_cluster, delivery_records
):
    cluster = dispatch_cluster(
        workers=1,
        beat=False,
        environment={
            **private_broker(private_redis),
            "DISPATCH_WORKERS_PER_CAMPAIGN": "1",
            "DELIVERY_CONCURRENCY": "2",
            DELAY_MIN_VARIABLE: "0.5",
            DELAY_MAX_VARIABLE: "0.5",
        },
    )
    [worker] = cluster.workers
    campaign = create_campaign(LOOP_RECIPIENTS)
    cluster.wait_until_ready()
    assert campaign.start()
    enqueue_start(campaign.pk, private_redis.url)
    wait_for(
        lambda: campaign.progress().processed >= LOOP_RESTART_AFTER_PROCESSED,
        START_TIMEOUT_SECONDS,
        lambda: f"the loop did not start delivering: {campaign.progress()}",
        cluster,
    )

    restart(private_redis, cluster)
    expect_reconnect(cluster, worker)

    # The loop should still be running at the reconnect.
    assert cluster.count_in_logs(f"campaign {campaign.pk}: worker loop finished") == 0

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the restart: {campaign.progress()}",
        cluster,
    )

    # The one loop should have delivered every recipient exactly once.
    assert cluster.count_in_logs(f"campaign {campaign.pk}: worker loop started") == 1
    assert_each_sent_once(campaign, delivery_records, LOOP_RECIPIENTS)


def test_waiting_loop_survives_restart(
    create_campaign, private_redis, dispatch_cluster, delivery_records
):
    cluster = dispatch_cluster(
        workers=1,
        beat=False,
        environment={
            **private_broker(private_redis),
            "DISPATCH_WORKERS_PER_CAMPAIGN": "1",
            "DISPATCH_SWEEP_INTERVAL_SECONDS": str(WAIT_SWEEP_INTERVAL_SECONDS),
            TRANSIENT_EVERY_VARIABLE: str(RETRY_TRANSIENT_EVERY),
            "DELIVERY_RETRY_BASE_SECONDS": str(WAIT_RETRY_SECONDS),
            "DELIVERY_RETRY_MAX_SECONDS": str(WAIT_RETRY_SECONDS),
        },
    )
    [worker] = cluster.workers
    campaign = create_campaign(WAIT_RECIPIENTS)
    cluster.wait_until_ready()
    assert campaign.start()
    enqueue_start(campaign.pk, private_redis.url)
    wait_for(
        lambda: cluster.count_in_logs(f"campaign {campaign.pk}: waiting .* for the next retry") > 0,
        START_TIMEOUT_SECONDS,
        lambda: f"the loop did not wait for the retries: {campaign.progress()}",
        cluster,
    )

    restart(private_redis, cluster)
    loop_finished_at_restart = cluster.count_in_logs(
        f"campaign {campaign.pk}: worker loop finished"
    )
    expect_reconnect(cluster, worker)

    # The loop should have been waiting still when Redis came back.
    assert loop_finished_at_restart == 0

    wait_for(
        lambda: campaign_status(campaign) == Campaign.Status.COMPLETED,
        FINISH_TIMEOUT_SECONDS,
        lambda: f"the campaign did not complete after the restart: {campaign.progress()}",
        cluster,
    )

    # The waiting loop should have delivered the retries: no other loop started.
    assert cluster.count_in_logs(f"campaign {campaign.pk}: worker loop started") == 1
    attempts = Counter(campaign.recipients.values_list("attempts", flat=True))
    assert attempts == {1: WAIT_RECIPIENTS - 3, 2: 3}
    assert_each_sent_once(campaign, delivery_records, WAIT_RECIPIENTS)
