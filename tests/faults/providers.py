"""A delivery provider for fault tests that records every delivery in Redis.

Celery worker subprocesses load `CountingProvider` through DELIVERY_PROVIDER,
so deliveries from every process land in one place, and the test process reads
them with `DeliveryRecords`. The records live in the Redis at
FAULTS_COUNTER_REDIS_URL, which a test keeps apart from the Redis it restarts.

Keys start with LIVE_UPDATES_CHANNEL_PREFIX, which config.test_settings makes
unique per test run, and contain the campaign id:

- `...:deliveries`: hash of recipient id to the number of messages delivered;
- `...:deliverers`: hash of "recipient id:attempt number" to the name of the
  worker (FAULTS_WORKER_NAME) that delivered that attempt.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from functools import cache

import redis
from django.conf import settings

from dispatch.providers import Delivery, TransientDeliveryError

# Environment variables that configure the provider in each worker process.
COUNTER_URL_VARIABLE = "FAULTS_COUNTER_REDIS_URL"
WORKER_NAME_VARIABLE = "FAULTS_WORKER_NAME"
DELAY_MIN_VARIABLE = "FAULTS_DELAY_MIN_SECONDS"
DELAY_MAX_VARIABLE = "FAULTS_DELAY_MAX_SECONDS"
# Recipients whose id is a multiple of this value fail transiently on their
# first attempt. The value 0, or no value, turns the rule off.
TRANSIENT_EVERY_VARIABLE = "FAULTS_TRANSIENT_EVERY"

DEFAULT_DELAY_MIN_SECONDS = 0.05
DEFAULT_DELAY_MAX_SECONDS = 0.2


def records_key(campaign_id: int, kind: str) -> str:
    """Name the Redis hash of one kind of record, "deliveries" or "deliverers"."""
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:faults:campaign:{campaign_id}:{kind}"


# Connections of one worker process to the counting Redis. Every delivery
# thread of every loop records through them, and a worker with two loops of
# the default DELIVERY_CONCURRENCY has 128 such threads. A thread waits up to
# POOL_TIMEOUT_SECONDS for a free connection, where redis-py 8's default pool
# of 100 raises MaxConnectionsError.
POOL_MAX_CONNECTIONS = 32
POOL_TIMEOUT_SECONDS = 30.0


@cache
def _client(url: str) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_MAX_CONNECTIONS, timeout=POOL_TIMEOUT_SECONDS
    )
    return redis.Redis(connection_pool=pool)


class CountingProvider:
    """A provider that waits a random delay, then records the delivery in Redis.

    A message counts as delivered only once this method records it, so a
    worker killed during the delay delivered nothing. Transient failures
    (FAULTS_TRANSIENT_EVERY) are raised before the delay and are not recorded.
    """

    name = "counting"

    def __init__(self) -> None:
        self.counter_url = os.environ.get(COUNTER_URL_VARIABLE) or settings.REDIS_URL
        self.worker_name = os.environ.get(WORKER_NAME_VARIABLE, f"pid-{os.getpid()}")
        self.delay_min = float(os.environ.get(DELAY_MIN_VARIABLE, DEFAULT_DELAY_MIN_SECONDS))
        self.delay_max = float(os.environ.get(DELAY_MAX_VARIABLE, DEFAULT_DELAY_MAX_SECONDS))
        if not 0 <= self.delay_min <= self.delay_max:
            raise ValueError(
                f"invalid delay range {self.delay_min}..{self.delay_max} seconds in "
                f"{DELAY_MIN_VARIABLE} and {DELAY_MAX_VARIABLE}: need 0 <= minimum <= maximum"
            )
        self.transient_every = int(os.environ.get(TRANSIENT_EVERY_VARIABLE) or 0)
        self.rng = random.Random()

    def deliver(self, delivery: Delivery) -> str:
        if (
            self.transient_every
            and delivery.recipient_id % self.transient_every == 0
            and delivery.attempt <= 1
        ):
            raise TransientDeliveryError("provider busy (fault test, first attempt)")

        time.sleep(self.rng.uniform(self.delay_min, self.delay_max))

        campaign_id = delivery.campaign_id
        pipeline = _client(self.counter_url).pipeline(transaction=False)
        pipeline.hincrby(records_key(campaign_id, "deliveries"), str(delivery.recipient_id), 1)
        pipeline.hset(
            records_key(campaign_id, "deliverers"),
            f"{delivery.recipient_id}:{delivery.attempt}",
            self.worker_name,
        )
        pipeline.execute()
        return f"counting-{uuid.uuid4()}"


class DeliveryRecords:
    """Reader of what `CountingProvider` recorded, for the test process."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def counts(self, campaign_id: int) -> dict[int, int]:
        """Messages delivered per recipient id. Recipients never delivered are absent."""
        raw = self.client.hgetall(records_key(campaign_id, "deliveries"))
        return {int(key): int(value) for key, value in raw.items()}

    def deliverers(self, campaign_id: int) -> dict[tuple[int, int], str]:
        """The worker name per (recipient id, attempt number) that was delivered."""
        raw = self.client.hgetall(records_key(campaign_id, "deliverers"))
        result = {}
        for key, value in raw.items():
            recipient_id, attempt = _text(key).split(":")
            result[int(recipient_id), int(attempt)] = _text(value)
        return result

    def by_worker(self, campaign_id: int) -> Counter[str]:
        """Messages delivered per worker name."""
        names = self.client.hvals(records_key(campaign_id, "deliverers"))
        return Counter(_text(name) for name in names)


def _text(value: bytes | str) -> str:
    """Decode a Redis reply. A client made with decode_responses=True returns str already."""
    return value.decode() if isinstance(value, bytes) else value
