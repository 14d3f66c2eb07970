"""Prometheus metrics: the counters that processes update and the collectors read at scrape time.

With PROMETHEUS_MULTIPROC_DIR set in the environment before this module is
imported, prometheus-client keeps every process's values in files in that
folder. A scrape of any web process on the host then adds up the values of
every process that wrote there: uvicorn workers, Celery workers and
management commands. docs/operations.md explains the setup.

Campaigns by status and queue lengths are read from PostgreSQL and Redis at
scrape time instead, by collectors registered in SCRAPE_REGISTRY.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from campaigns.models import Recipient
    from dispatch.claims import Outcome
    from dispatch.providers.base import Provider

logger = logging.getLogger(__name__)

PREFIX = "campaign_dispatcher"

DELIVERIES = Counter(
    f"{PREFIX}_deliveries",
    "Recipients whose delivery attempt ended, by outcome: sent, failed (for good), "
    "retry (a transient error, queued again) or suppressed (on the suppression list).",
    ["provider", "channel", "outcome"],
)
DELIVERY_DURATION = Histogram(
    f"{PREFIX}_delivery_duration_seconds",
    "Seconds that one provider call took, whatever its outcome.",
    ["provider", "channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    f"{PREFIX}_delivery_retries",
    "Delivery attempts that retried a recipient after a transient error.",
    ["provider", "channel"],
)
LIVE_STREAMS = Gauge(
    f"{PREFIX}_live_streams",
    "Open live-update streams (server-sent events), by stream: campaign or index.",
    ["stream"],
    # Adds up the values of the processes that are alive: a stream of a
    # process that exited is closed.
    multiprocess_mode="livesum",
)

# Recipient statuses after an outcome was written, and the outcome label of each.
_OUTCOME_OF_STATUS = {"sent": "sent", "failed": "failed", "queued": "retry"}


def provider_label(provider: Provider, channel: str) -> str:
    """Return the name of the provider that delivers `channel` through `provider`.

    A ChannelRouter hands each channel to a provider of its own, and that
    provider's name is the one worth counting.
    """
    inner = getattr(provider, channel, None)
    name = getattr(inner, "name", None)
    return str(name) if name else provider.name


def count_outcomes(
    provider: Provider, changed: Iterable[Recipient], outcomes: Iterable[Outcome]
) -> None:
    """Count the written outcomes, the provider calls' durations and the retries of one flush.

    `changed` are the rows that the outcomes changed: an outcome that arrived
    after its claim expired is not counted in DELIVERIES, because another
    worker's result is kept. Its provider call and retry are counted.
    """
    tally = Tally((r.channel, _OUTCOME_OF_STATUS[r.status]) for r in changed)
    for (channel, label), count in tally.items():
        DELIVERIES.labels(provider_label(provider, channel), channel, label).inc(count)
    retries: Tally[str] = Tally()
    for outcome in outcomes:
        channel = outcome.claim.channel
        if outcome.provider_seconds is not None:
            DELIVERY_DURATION.labels(provider_label(provider, channel), channel).observe(
                outcome.provider_seconds
            )
        if outcome.claim.attempt - outcome.claim.attempt_base > 1:
            retries[channel] += 1
    for channel, count in retries.items():
        RETRIES.labels(provider_label(provider, channel), channel).inc(count)


def count_suppressed(provider: Provider, changed: Iterable[Recipient]) -> None:
    """Count recipients that ended as suppressed instead of being sent."""
    for channel, count in Tally(r.channel for r in changed).items():
        DELIVERIES.labels(provider_label(provider, channel), channel, "suppressed").inc(count)


class CampaignStatusCollector(Collector):
    """Campaigns by status, read with one GROUP BY query at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from campaigns.models import Campaign

        family = GaugeMetricFamily(
            f"{PREFIX}_campaigns",
            "Campaigns by status, at the time of the scrape.",
            labels=["status"],
        )
        counts = dict.fromkeys(Campaign.Status.values, 0)
        rows = Campaign.objects.order_by().values_list("status").annotate(count=Count("pk"))
        for status, count in rows:
            counts[status] = count
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family


# kombu's Redis transport keeps messages of priority 0 in a list named after
# the queue, and those of priorities 3, 6 and 9 in lists with this separator
# and the priority appended (kombu.transport.redis, PRIORITY_STEPS and sep).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_names() -> dict[str, str]:
    """Return the Celery queue of each kind, by the kind's label."""
    return {
        "default": settings.CELERY_TASK_DEFAULT_QUEUE,
        "control": settings.DISPATCH_CONTROL_QUEUE,
        "imports": settings.IMPORT_QUEUE,
    }


class QueueLengthCollector(Collector):
    """Messages waiting in each Celery queue in Redis, read with LLEN at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{PREFIX}_queue_length",
            "Messages waiting in a Celery queue, not yet taken by a worker.",
            labels=["kind", "queue"],
        )
        names = queue_names()
        timeout = settings.METRICS_REDIS_TIMEOUT_SECONDS
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            with client.pipeline(transaction=False) as pipeline:
                for name in names.values():
                    for suffix in _PRIORITY_SUFFIXES:
                        pipeline.llen(name + suffix)
                lengths = pipeline.execute()
        finally:
            client.close()
        per_queue = len(_PRIORITY_SUFFIXES)
        for index, (kind, name) in enumerate(names.items()):
            family.add_metric(
                [kind, name], sum(lengths[index * per_queue : (index + 1) * per_queue])
            )
        yield family


class GuardedCollectors(Collector):
    """Run other collectors, and report which worked instead of failing the scrape.

    A scrape still returns the counters while PostgreSQL or Redis is down,
    with `campaign_dispatcher_scrape_collector_success{collector=...}` at 0.
    One family carries the result of every collector, because the text
    format allows one HELP and TYPE line per metric name.
    """

    def __init__(self, collectors: dict[str, Collector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            f"{PREFIX}_scrape_collector_success",
            "1 when the collector read its source at this scrape, 0 when it failed.",
            labels=["collector"],
        )
        for name, inner in self.collectors.items():
            try:
                families = list(inner.collect())
            except Exception as exc:
                logger.warning(
                    "metrics: the %s collector failed: %s: %s", name, type(exc).__name__, exc
                )
                success.add_metric([name], 0)
                continue
            yield from families
            success.add_metric([name], 1)
        yield success


SCRAPE_REGISTRY = CollectorRegistry(auto_describe=False)
SCRAPE_REGISTRY.register(
    GuardedCollectors({"campaigns": CampaignStatusCollector(), "queues": QueueLengthCollector()})
)


def multiprocess_dir() -> str | None:
    """Return PROMETHEUS_MULTIPROC_DIR, or None when the process keeps its metrics in memory."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db")


def forget_dead_processes(path: str) -> list[int]:
    """Remove the live-gauge files of processes that no longer run; returns their PIDs.

    A process that exits normally removes its own (`mark_process_dead` in
    ops/apps.py and config/celery.py); this catches those that were killed.
    It assumes that every process writing to `path` runs on this host, in
    this PID namespace.
    """
    dead = []
    for entry in Path(path).iterdir():
        match = _LIVE_GAUGE_FILE.fullmatch(entry.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(pid)
        except PermissionError:
            pass  # alive, under another user
    for pid in set(dead):
        multiprocess.mark_process_dead(pid, path)
    return sorted(set(dead))


def exposition() -> tuple[bytes, str]:
    """Return every metric in Prometheus' text format, with its content type."""
    path = multiprocess_dir()
    if path is None:
        registry = REGISTRY
    else:
        forget_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry) + generate_latest(SCRAPE_REGISTRY), CONTENT_TYPE_LATEST
