"""Fixtures shared by every test: real PostgreSQL (pytest-django's test database) and real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.test import AsyncClient, Client

from campaigns.models import Campaign, Recipient
from config.test_settings import RUN_ID
from live import streams
from tests.factories import MESSAGE_CONTENT, operator_user, operator_workspace
from tests.servers import free_port
from tests.smtp import SMTP_BACKEND, RecordingHandler


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last, after pytest-django has ordered the others.

    Sync Playwright leaves an event loop marked as running in the main
    thread for the rest of the session, and the test client's async_to_sync
    then rejects requests to async views. The sort is stable, so every other
    test keeps its place.
    """
    items.sort(key=lambda item: item.get_closest_marker("system") is not None)


@pytest.fixture(scope="session", autouse=True)
def delete_live_streams() -> Iterator[None]:
    """Delete this run's live-update streams and header leases when the session ends.

    Workers that tests run add entries to a stream per campaign, which would
    otherwise stay in Redis for LIVE_STREAM_TTL_SECONDS. A prefix set in the
    environment may be shared with a running app, so only the run's own
    prefix is cleaned.
    """
    yield
    prefix = settings.LIVE_UPDATES_CHANNEL_PREFIX
    if prefix != f"test-{RUN_ID}":
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"{prefix}:campaign:*"
    keys = [
        key
        for key in client.scan_iter(match=pattern, count=1000)
        if key.endswith((b":updates", b":header-lease"))
    ]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def job_queue(redis_client: redis.Redis) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Return a function listing the Celery messages waiting in this run's queues.

    `job_queue()` lists the default queue, then the control queue, then the
    import queue, and `job_queue(name)` lists only the queue `name`. The
    queues are emptied before and after the test, so each test lists only the
    jobs that it enqueued.
    """
    import json

    queues = [
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.DISPATCH_CONTROL_QUEUE,
        settings.IMPORT_QUEUE,
    ]
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
def operator(db: None) -> Any:
    """A user who can sign in."""
    return operator_user()


@pytest.fixture
def signed_in(operator: Any) -> Callable[..., Client]:
    """Return a function that makes a test client signed in as `operator`.

    It takes Client's arguments, such as enforce_csrf_checks=True.
    """

    def make(**kwargs: Any) -> Client:
        signed_in_client = Client(**kwargs)
        signed_in_client.force_login(operator)
        return signed_in_client

    return make


@pytest.fixture
def client(signed_in: Callable[..., Client]) -> Client:
    """pytest-django's client, signed in: every page needs a signed-in user."""
    return signed_in()


@pytest.fixture
def async_client(operator: Any) -> AsyncClient:
    """pytest-django's async client, signed in as `operator`."""
    signed_in_client = AsyncClient()
    signed_in_client.force_login(operator)
    return signed_in_client


@pytest.fixture
def anonymous_client() -> Client:
    """A test client that has not signed in."""
    return Client()


@pytest.fixture
def smtp_sink(settings: Any) -> Iterator[RecordingHandler]:
    """An SMTP server on a free loopback port, as the "default" and "sink" mailers."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    options = {"host": "127.0.0.1", "port": port, "timeout": 5.0}
    settings.MAILERS = {
        alias: {"BACKEND": SMTP_BACKEND, "OPTIONS": options} for alias in ("default", "sink")
    }
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def make_campaign() -> Callable[..., Campaign]:
    """Create a campaign with message content and with recipients given as dicts of
    Recipient fields."""

    def make(
        name: str = "Spring launch",
        recipients: list[dict[str, str]] | None = None,
        **fields: Any,
    ) -> Campaign:
        fields.setdefault("workspace", operator_workspace())
        campaign = Campaign.objects.create(name=name, **{**MESSAGE_CONTENT, **fields})
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


@dataclass(frozen=True)
class StreamEntry:
    """One entry of a campaign's live-update stream (see live/streams.py)."""

    id: str
    fields: dict[str, str]

    @property
    def kind(self) -> str:
        return self.fields["kind"]

    @property
    def recipient_ids(self) -> list[int]:
        """The recipient ids of a `rows` entry, in the order they were published."""
        return [int(part) for part in self.fields["ids"].split(",")]


class StreamListener:
    """Reads the entries added to a campaign's live-update stream after it was created."""

    def __init__(self, client: redis.Redis, campaign_id: int) -> None:
        self.client = client
        self.key = streams.stream_key(campaign_id)
        self.lease_key = streams.header_lease_key(campaign_id)
        newest = cast(list[tuple[str, dict[str, str]]], client.xrevrange(self.key, count=1))
        self.position = newest[0][0] if newest else streams.START

    def entries(self) -> list[StreamEntry]:
        """Return the entries added since the previous call, or since listening began."""
        # "(" makes the start exclusive, so the entry at the position is not read again.
        read = cast(
            list[tuple[str, dict[str, str]]], self.client.xrange(self.key, min=f"({self.position}")
        )
        if read:
            self.position = read[-1][0]
        return [StreamEntry(entry_id, fields) for entry_id, fields in read]


@pytest.fixture
def listen() -> Iterator[Callable[[Campaign], StreamListener]]:
    """Start reading a campaign's live-update stream; returns the listener.

    The streams and header leases of the campaigns listened to are deleted
    after the test.
    """
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    listeners: list[StreamListener] = []

    def start(campaign: Campaign) -> StreamListener:
        listener = StreamListener(client, campaign.pk)
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        client.delete(listener.key, listener.lease_key)
    client.close()
