"""/metrics: access rules, and the values that the engine, the streams and the collectors report."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from django.conf import settings
from django.test import Client
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from campaigns.models import Campaign
from dispatch.engine import run_campaign
from live.views import _counted
from ops import metrics
from suppressions.models import SuppressionReason, suppress
from tests.dispatch.fakes import TEST_ENGINE_SETTINGS, RecordingProvider
from tests.servers import PROJECT_ROOT

pytestmark = pytest.mark.django_db

TOKEN = "test-metrics-token-" + "x" * 20
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics_on(settings) -> None:
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> Samples:
    """GET /metrics with the token and return every sample by name and labels."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_off_without_token(anonymous_client: Client):
    response = anonymous_client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization", ["", f"Basic {TOKEN}", "Bearer wrong-token", f"Bearer {TOKEN}x"]
)
def test_metrics_rejects_wrong_token(anonymous_client: Client, metrics_on, authorization):
    response = anonymous_client.get("/metrics", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"campaign_dispatcher" not in response.content


def test_tests_use_multiprocess_mode():
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    assert values.ValueClass is not values.MutexValue


def test_campaigns_by_status(anonymous_client: Client, metrics_on, make_campaign):
    before = scrape(anonymous_client)
    make_campaign()
    make_campaign().start()

    after = scrape(anonymous_client)

    name = "campaign_dispatcher_campaigns"
    pending_before = value(before, name, status="pending")
    processing_before = value(before, name, status="processing")
    assert value(after, name, status="pending") == pending_before + 1
    assert value(after, name, status="processing") == processing_before + 1
    assert (name, frozenset({("status", "cancelled")})) in after
    assert value(after, "campaign_dispatcher_scrape_collector_success", collector="campaigns") == 1


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.delete(settings.IMPORT_QUEUE, settings.IMPORT_QUEUE + "\x06\x169")
    client.close()


def test_queue_length_counts_priorities(anonymous_client: Client, metrics_on, broker):
    broker.rpush(settings.IMPORT_QUEUE, "a", "b")
    broker.rpush(settings.IMPORT_QUEUE + "\x06\x169", "c")

    samples = scrape(anonymous_client)

    name = "campaign_dispatcher_queue_length"
    assert value(samples, name, kind="imports", queue=settings.IMPORT_QUEUE) == 3
    assert (
        name,
        frozenset({("kind", "control"), ("queue", settings.DISPATCH_CONTROL_QUEUE)}),
    ) in samples


def test_each_family_is_described_once(anonymous_client: Client, metrics_on):
    text = anonymous_client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    help_lines = [line for line in text.splitlines() if line.startswith("# HELP ")]
    names = [line.split()[2] for line in help_lines]
    assert len(names) == len(set(names)), sorted(names)
    families = [f.name for f in text_string_to_metric_families(text)]
    assert len(families) == len(set(families))


def test_queue_collector_failure_keeps_scrape(anonymous_client: Client, metrics_on, settings):
    from tests.servers import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"

    samples = scrape(anonymous_client)

    success = "campaign_dispatcher_scrape_collector_success"
    assert value(samples, success, collector="queues") == 0
    assert value(samples, success, collector="campaigns") == 1
    assert not any(key[0] == "campaign_dispatcher_queue_length" for key in samples)


def test_engine_counts_outcomes(anonymous_client: Client, metrics_on, make_campaign):
    provider = RecordingProvider(
        permanent={"lost@example.com": "mailbox does not exist"},
        transient={"busy@example.com": "try again later"},
    )
    provider.name = f"recording-{uuid.uuid4().hex[:8]}"
    campaign = make_campaign(
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Alan", "email": "alan@example.com"},
            {"name": "Lost", "email": "lost@example.com"},
            {"name": "Busy", "email": "busy@example.com"},
            {"name": "Gone", "email": "gone@example.com"},
        ]
    )
    suppress(
        email="gone@example.com",
        reason=SuppressionReason.OPERATOR,
        workspace_id=campaign.workspace_id,
    )
    assert campaign.start()

    run_campaign(campaign.pk, provider, TEST_ENGINE_SETTINGS)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    samples = scrape(anonymous_client)
    labels = {"provider": provider.name, "channel": "email"}
    deliveries = "campaign_dispatcher_deliveries_total"
    assert value(samples, deliveries, **labels, outcome="sent") == 3
    assert value(samples, deliveries, **labels, outcome="failed") == 1
    assert value(samples, deliveries, **labels, outcome="retry") == 1
    assert value(samples, deliveries, **labels, outcome="suppressed") == 1
    assert value(samples, "campaign_dispatcher_delivery_retries_total", **labels) == 1
    # Ada, Alan, Lost, and Busy twice: one provider call each.
    duration = "campaign_dispatcher_delivery_duration_seconds"
    assert value(samples, f"{duration}_count", **labels) == 5
    assert value(samples, f"{duration}_bucket", **labels, le="+Inf") == 5
    assert value(samples, f"{duration}_sum", **labels) > 0


def test_router_counts_each_channel_by_its_provider():
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    class Router:
        name = "router"
        email = Named("smtp")
        sms = Named("twilio")

    assert metrics.provider_label(Router(), "email") == "smtp"  # type: ignore[arg-type]
    assert metrics.provider_label(Router(), "sms") == "twilio"  # type: ignore[arg-type]
    assert metrics.provider_label(Named("simulated"), "sms") == "simulated"  # type: ignore[arg-type]


def test_live_stream_gauge_follows_stream(anonymous_client: Client, metrics_on):
    name = "campaign_dispatcher_live_streams"
    before = value(scrape(anonymous_client), name, stream="campaign")
    opened = asyncio.Event()
    release = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        opened.set()
        await release.wait()
        yield "event"

    async def run() -> tuple[float, float]:
        stream = _counted(events(), "campaign")
        first = asyncio.ensure_future(anext(stream))
        await opened.wait()
        during = value(metrics_scrape(), name, stream="campaign")
        release.set()
        await first
        await stream.aclose()
        return during, value(metrics_scrape(), name, stream="campaign")

    during, after = asyncio.run(run())

    assert during == before + 1
    assert after == before


def metrics_scrape() -> Samples:
    """Read the exposition without a request, for code that runs inside an event loop."""
    body, _ = metrics.exposition()
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def run_in_subprocess(code: str) -> None:
    """Run `code` in a new Python process with the test settings and this run's metrics folder."""
    prelude = "import django; django.setup(); "
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.test_settings")
    result = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_counter_from_other_process_in_scrape(anonymous_client: Client, metrics_on):
    provider = f"subprocess-{uuid.uuid4().hex[:8]}"

    run_in_subprocess(
        f"from ops import metrics; metrics.DELIVERIES.labels({provider!r}, 'sms', 'sent').inc(3)"
    )

    samples = scrape(anonymous_client)
    deliveries = "campaign_dispatcher_deliveries_total"
    assert value(samples, deliveries, provider=provider, channel="sms", outcome="sent") == 3


def test_gauge_of_killed_process_dropped(anonymous_client: Client, metrics_on):
    stream = f"killed-{uuid.uuid4().hex[:8]}"
    exited = f"exited-{uuid.uuid4().hex[:8]}"

    # os._exit skips atexit, as a killed process would.
    run_in_subprocess(
        f"from ops import metrics; metrics.LIVE_STREAMS.labels({stream!r}).inc(2); "
        "import os; os._exit(0)"
    )
    # A normal exit removes the process's gauge files through atexit.
    run_in_subprocess(f"from ops import metrics; metrics.LIVE_STREAMS.labels({exited!r}).inc(2)")

    samples = scrape(anonymous_client)
    assert value(samples, "campaign_dispatcher_live_streams", stream=stream) == 0
    assert value(samples, "campaign_dispatcher_live_streams", stream=exited) == 0
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert not metrics.forget_dead_processes(folder)
