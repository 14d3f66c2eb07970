"""Fixtures for fault tests: Celery worker and beat subprocesses, a private Redis, big campaigns.

Fault tests run real processes against pytest-django's test database, so
they need `django_db(transaction=True)`, because workers see only committed rows.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from campaigns.models import Campaign, Recipient
from config.celery import app as celery_app
from dispatch.tasks import start_campaign_task
from localdev.private_redis import PrivateRedis
from localdev.urls import RedisTarget, parse_redis_url
from tests.factories import MESSAGE_CONTENT, operator_workspace
from tests.faults.cluster import (
    DispatchCluster,
    cluster_environment,
    run_queues,
    start_beat,
    start_worker,
)
from tests.faults.providers import DeliveryRecords
from tests.servers import AppServer, free_port, start_app_server, stop_app_server

RECIPIENT_BATCH_SIZE = 2000

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="needs redis-server to run a private Redis that the test can restart",
)


@pytest.fixture
def create_campaign() -> Callable[..., Campaign]:
    """Return a function that creates a pending campaign with `count` email recipients."""

    def create(count: int, **fields: object) -> Campaign:
        campaign = Campaign.objects.create(
            workspace=operator_workspace(),
            name=f"Fault test, {count} recipients",
            **{**MESSAGE_CONTENT, **fields},
        )
        Recipient.objects.bulk_create(
            (
                Recipient(campaign=campaign, name=f"Recipient {i}", email=f"r{i}@example.com")
                for i in range(count)
            ),
            batch_size=RECIPIENT_BATCH_SIZE,
        )
        return campaign

    return create


@pytest.fixture
def delivery_records(redis_client: redis.Redis) -> Iterator[DeliveryRecords]:
    """What the counting provider recorded. This run's records are deleted afterwards."""
    yield DeliveryRecords(redis_client)
    pattern = f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:faults:*"
    keys = list(redis_client.scan_iter(match=pattern))
    if keys:
        redis_client.delete(*keys)


# Clusters of the running test, for the failure report and the private Redis's teardown.
_running_clusters: list[DispatchCluster] = []


@dataclass
class PrivateRedisServer:
    """A Redis server on a free loopback port that keeps nothing on disk."""

    url: str
    target: RedisTarget
    server: PrivateRedis

    def stop(self) -> None:
        """Stop the server with SIGTERM. It saves nothing to disk, so its data is gone."""
        self.server.stop()

    def start(self) -> None:
        """Start an empty server on the same port."""
        self.server.start(self.target)


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedisServer]:
    """A private Redis for one test. Celery processes are stopped before it is."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    target = parse_redis_url(url)
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis"))
    server.start(target)
    yield PrivateRedisServer(url=url, target=target, server=server)
    # Workers that lose their broker during a warm shutdown retry the
    # connection and log errors, so they stop first, whatever the fixture order.
    for cluster in _running_clusters:
        cluster.stop()
    server.stop()


def campaign_status(campaign: Campaign) -> str:
    """Read the campaign's status from the database."""
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def assert_each_sent_once(
    campaign: Campaign, delivery_records: DeliveryRecords, recipients: int
) -> None:
    """Check that all `recipients` are sent and the provider delivered each exactly once."""
    statuses = Counter(campaign.recipients.values_list("status", flat=True))
    assert statuses == {Recipient.Status.SENT: recipients}
    counts = delivery_records.counts(campaign.pk)
    assert set(counts) == set(campaign.recipients.values_list("id", flat=True))
    assert {pk: count for pk, count in counts.items() if count != 1} == {}


def enqueue_start(campaign_id: int, broker_url: str) -> None:
    """Enqueue the start of a campaign on the broker at `broker_url`.

    dispatch_campaign_later always uses the broker that this process's Celery
    app was configured with, so tests whose workers use a private Redis send
    the same task through a connection of their own.
    """
    with celery_app.connection_for_write(broker_url) as connection:
        start_campaign_task.apply_async((campaign_id,), producer=connection.Producer())


@pytest.fixture
def dispatch_cluster(
    transactional_db: None, tmp_path: Path, redis_client: redis.Redis
) -> Iterator[Callable[..., DispatchCluster]]:
    """Return a function that starts Celery workers and beat, all stopped after the test.

    `start(workers=2, environment={...}, beat=True, supervise=False)` starts
    that many workers named worker-1, worker-2, ... and, with `beat`, one beat
    process, which sends the sweep every second. `supervise` restarts workers
    that exit on their own (see DispatchCluster). `environment` adds to or
    overrides cluster.WORKER_ENVIRONMENT, for example to point REDIS_URL and
    CELERY_BROKER_URL at a private Redis.

    The workers consume both of this run's queues, so any of them runs the
    start and sweep tasks when it has a free thread. The processes load
    Django while the test goes on, and `DispatchCluster.wait_until_ready()`
    waits for the workers. This run's queues on the default Redis are emptied
    before and after the test.
    Depending on `transactional_db` makes the processes stop before
    pytest-django empties the tables, which would otherwise wait for their locks.
    """
    queues = run_queues()
    redis_client.delete(*queues)
    clusters: list[DispatchCluster] = []

    def start(
        workers: int = 2,
        environment: dict[str, str] | None = None,
        beat: bool = True,
        supervise: bool = False,
    ) -> DispatchCluster:
        log_dir = tmp_path / f"cluster-{len(clusters) + 1}"
        log_dir.mkdir()
        cluster = DispatchCluster(
            log_dir=log_dir,
            environment=cluster_environment(environment or {}),
            supervise=supervise,
        )
        clusters.append(cluster)
        _running_clusters.append(cluster)
        for number in range(1, workers + 1):
            start_worker(cluster, f"worker-{number}")
        if beat:
            start_beat(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()
        _running_clusters.remove(cluster)
    redis_client.delete(*queues)


# uvicorn processes of the running test, for the failure report.
_running_app_servers: list[AppServer] = []


@pytest.fixture
def web_servers(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[[int], list[AppServer]]]:
    """Return a function that starts `count` uvicorn processes, all stopped after the test.

    Each process serves config.asgi on a free loopback port, reads the test
    database and sends tasks to this run's queues (see tests/servers.py). The
    function returns once every process serves the sign-in page. Each one
    writes its own log, web-1.log, web-2.log, ..., in the test's tmp_path.
    """
    started: list[AppServer] = []

    def start(count: int) -> list[AppServer]:
        servers = []
        for _ in range(count):
            server = start_app_server(tmp_path / f"web-{len(started) + 1}.log")
            started.append(server)
            _running_app_servers.append(server)
            servers.append(server)
        return servers

    yield start
    for server in started:
        stop_app_server(server)
        _running_app_servers.remove(server)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log tail of every worker, beat and uvicorn process to the report of a
    failed test."""
    report = yield
    if report.failed:
        for cluster in _running_clusters:
            for process in cluster.processes + cluster.exited:
                report.sections.append(
                    (f"{process.name} log tail ({process.log_path})", process.log_tail())
                )
        for server in _running_app_servers:
            report.sections.append(
                (f"uvicorn log tail ({server.base_url}, {server.log_path})", server.log_tail())
            )
    return report
