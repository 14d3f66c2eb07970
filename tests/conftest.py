"""Fixtures shared by every test: real PostgreSQL (pytest-django's test database) and real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from campaigns.models import Campaign, Recipient
from live import broadcasts


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def job_queue(redis_client: redis.Redis) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Return a function listing the Celery messages waiting in this run's queues.

    `job_queue()` lists the default queue, then the control queue, and
    `job_queue(name)` lists only the queue `name`. Both queues are emptied
    before and after the test, so each test lists only the jobs that it enqueued.
    """
    import json

    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.DISPATCH_CONTROL_QUEUE]
    redis_client.delete(*queues)

    def waiting(*names: str) -> list[dict[str, Any]]:
        return [
            json.loads(raw)
            for queue in names or queues
            for raw in redis_client.lrange(queue, 0, -1)
        ]

    yield waiting
    redis_client.delete(*queues)


@pytest.fixture
def make_campaign() -> Callable[..., Campaign]:
    """Create a campaign with recipients given as dicts of Recipient fields."""

    def make(
        name: str = "Spring launch",
        recipients: list[dict[str, str]] | None = None,
        **fields: Any,
    ) -> Campaign:
        campaign = Campaign.objects.create(name=name, **fields)
        if recipients is None:
            recipients = [
                {"name": "Ada", "email": "ada@example.com"},
                {"name": "Grace", "phone_number": "+12025550101"},
                {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
            ]
        for row in recipients:
            Recipient.objects.create(campaign=campaign, **row)
        return campaign

    return make


class ChannelListener:
    """Collects what is published on a campaign's live-update channel."""

    def __init__(self, client: redis.Redis, campaign_id: int) -> None:
        self.pubsub = client.pubsub()
        self.pubsub.subscribe(broadcasts.channel_name(campaign_id))
        # Wait for the subscription confirmation, so nothing published after
        # this constructor returns can be missed.
        confirmation = self.pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"

    def messages(self, timeout: float = 0.2) -> list[str]:
        """Return every message published so far, waiting `timeout` seconds for stragglers."""
        received = []
        while (
            message := self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        ) is not None:
            received.append(message["data"].decode())
        return received

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def listen(redis_client: redis.Redis) -> Iterator[Callable[[Campaign], ChannelListener]]:
    """Subscribe to a campaign's live-update channel; returns the listener."""
    listeners: list[ChannelListener] = []

    def subscribe(campaign: Campaign) -> ChannelListener:
        listener = ChannelListener(redis_client, campaign.pk)
        listeners.append(listener)
        return listener

    yield subscribe
    for listener in listeners:
        listener.close()
