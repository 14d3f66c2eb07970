"""The campaign stream, read over a real socket from the app under uvicorn."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from live import broadcasts
from live.views import RECONNECT_DELAY_MS
from tests.outcomes import claim, set_outcome
from tests.servers import wait_until

# Seconds a read may block before the test fails. Every expected event is due well before.
READ_TIMEOUT_SECONDS = 5.0

# The (method, target) of a replace stream; the method is "morph" for the header, "" for rows.
REPLACE_STREAM = re.compile(r'<turbo-stream action="replace"(?: method="(\w+)")? target="([^"]+)">')


class EventStream:
    """A streaming GET of a server-sent-events URL, read one block at a time.

    A block is the lines up to the next blank line: an event, a `retry:`
    field, or a comment.
    """

    def __init__(self, base_url: str, path: str) -> None:
        self.connection = http.client.HTTPConnection(
            urlsplit(base_url).netloc, timeout=READ_TIMEOUT_SECONDS
        )
        self.connection.request("GET", path, headers={"Accept": "text/event-stream"})
        self.response = self.connection.getresponse()

    def next_block(self) -> list[str]:
        """Read the next non-empty block. Raises TimeoutError if none arrives in time."""
        lines: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                raise AssertionError(f"The stream ended. Lines read since the last block: {lines}")
            line = raw.decode().removesuffix("\n")
            if line:
                lines.append(line)
            elif lines:
                return lines

    def next_event(self) -> list[str]:
        """Read blocks until one is an event rather than a keep-alive comment."""
        while True:
            block = self.next_block()
            if not all(line.startswith(":") for line in block):
                return block

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def event_data(block: list[str]) -> str:
    """Join the `data:` lines of an event as an EventSource client does. Fails on other lines."""
    values = []
    for line in block:
        field, _, value = line.partition(":")
        assert field == "data", f"expected only data: lines in the event, got {line!r}"
        values.append(value.removeprefix(" "))
    return "\n".join(values)


OpenStream = Callable[[str, str], EventStream]


def numsub(client: redis.Redis, channel: str) -> int:
    [(_, count)] = client.pubsub_numsub(channel)
    return int(count)


@pytest.fixture
def open_stream() -> Iterator[OpenStream]:
    """Return a function that opens an EventStream. All of them are closed after the test."""
    streams: list[EventStream] = []

    def open_(base_url: str, path: str) -> EventStream:
        stream = EventStream(base_url, path)
        streams.append(stream)
        return stream

    yield open_
    for stream in streams:
        stream.close()


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    return make_campaign(
        name="Launch <i>now</i>",
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "<b>x</b>", "phone_number": "+12025550101"},
            {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
        ],
    )


def stream_path(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.pk}/stream"


def test_stream_unknown_campaign_is_404(app_server: str) -> None:
    connection = http.client.HTTPConnection(
        urlsplit(app_server).netloc, timeout=READ_TIMEOUT_SECONDS
    )
    try:
        connection.request("GET", "/campaigns/987654321/stream")
        response = connection.getresponse()

        assert response.status == 404
        assert not response.getheader("Content-Type", "").startswith("text/event-stream")
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_stream_response_headers(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))

    assert stream.response.status == 200
    content_type = stream.response.getheader("Content-Type", "")
    assert content_type.split(";")[0] == "text/event-stream"
    assert stream.response.getheader("Cache-Control") == "no-cache"
    assert stream.response.getheader("X-Accel-Buffering") == "no"


@pytest.mark.django_db(transaction=True)
def test_stream_starts_with_retry_and_snapshot(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))

    # It should first tell the browser how long to wait before reconnecting.
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]

    # It should then send one event that morphs the header and replaces every
    # row, in id order.
    snapshot = stream.next_block()
    assert len(snapshot) > 1, "expected a multi-line event, so the data: prefixing is exercised"
    data = event_data(snapshot)
    recipient_ids = list(campaign.recipients.order_by("id").values_list("id", flat=True))
    expected_streams = [("morph", f"campaign_{campaign.pk}_header")]
    expected_streams += [("", f"recipient_{pk}") for pk in recipient_ids]
    assert REPLACE_STREAM.findall(data) == expected_streams
    assert 'data-status="queued"' in data
    assert 'data-campaign-status="pending"' in data


@pytest.mark.django_db(transaction=True)
def test_stream_escapes_user_content(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()

    data = event_data(stream.next_block())

    assert "&lt;b&gt;x&lt;/b&gt;" in data
    assert "<b>x</b>" not in data
    assert "Launch &lt;i&gt;now&lt;/i&gt;" in data
    assert "<i>now</i>" not in data


@pytest.mark.django_db(transaction=True)
def test_stream_relays_published_message(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()
    stream.next_block()
    # The snapshot is read after the server subscribed, so from here on
    # nothing published on the channel can be missed.
    recipient = campaign.recipients.order_by("id").first()
    assert recipient is not None
    assert set_outcome(recipient, Recipient.Status.FAILED, "mailbox full")
    published = broadcasts.recipient_stream(recipient) + broadcasts.header_stream(campaign)

    broadcasts.publish(campaign.pk, published)
    relayed = event_data(stream.next_event())

    assert relayed == published
    assert REPLACE_STREAM.findall(relayed) == [
        ("", recipient.dom_id),
        ("morph", f"campaign_{campaign.pk}_header"),
    ]
    assert "mailbox full" in relayed


@pytest.fixture(scope="module")
def quick_keepalive_server(start_extra_app_server: Callable[[dict[str, str]], str]) -> str:
    """A second server that sends a keep-alive comment after 0.5 s without messages."""
    return start_extra_app_server({"LIVE_UPDATES_KEEPALIVE_SECONDS": "0.5"})


@pytest.mark.django_db(transaction=True)
def test_stream_sends_keepalive_when_idle(
    quick_keepalive_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(quick_keepalive_server, stream_path(campaign))
    stream.next_block()
    stream.next_block()
    snapshot_received = time.monotonic()

    # It should send the first keep-alive after 0.5 s without messages, not at once.
    assert stream.next_block() == [": keep-alive"]
    first_keepalive_after = time.monotonic() - snapshot_received
    # The client starts timing when the snapshot arrives, a little after the
    # server sent it, so the bound is 0.4 s rather than 0.5 s.
    assert first_keepalive_after >= 0.4, f"keep-alive after {first_keepalive_after:.3f} s"

    # It should go on sending them while the stream stays idle.
    assert stream.next_block() == [": keep-alive"]


@pytest.mark.django_db(transaction=True)
def test_stream_unsubscribes_on_disconnect(
    app_server: str, open_stream: OpenStream, campaign: Campaign, redis_client: redis.Redis
) -> None:
    channel = broadcasts.channel_name(campaign.pk)
    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()
    stream.next_block()
    assert numsub(redis_client, channel) == 1

    stream.close()

    # This server sends a keep-alive only every 15 s (the default), so the
    # server must notice the disconnect itself, not through a failed write.
    wait_until(
        lambda: numsub(redis_client, channel) == 0,
        timeout=5,
        failure_message=f"the server still subscribes to {channel} after the client disconnected",
    )


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_shows_outcomes(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    sent, failed, queued = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "number not reachable")

    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()
    data = event_data(stream.next_block())

    statuses = re.findall(r'<tr id="(recipient_\d+)" data-status="(\w+)"', data)
    assert statuses == [
        (sent.dom_id, Recipient.Status.SENT),
        (failed.dom_id, Recipient.Status.FAILED),
        (queued.dom_id, Recipient.Status.QUEUED),
    ]
    assert "number not reachable" in data


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_shows_paused_campaign(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    assert campaign.start()
    in_flight, retrying, _queued = campaign.recipients.order_by("id")
    assert claim(in_flight)
    retry_at = timezone.now() + timedelta(minutes=5)
    assert set_outcome(
        retrying, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=retry_at
    )
    assert campaign.pause("3 failures since the last resume (limit 3)")

    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()
    data = event_data(stream.next_block())

    # It should render the same header as the page: status, reason, Resume button.
    assert 'data-campaign-status="paused"' in data
    assert "Paused: 3 failures since the last resume (limit 3)" in data
    assert ">Resume</button>" in data
    assert ">Pause</button>" not in data
    statuses = re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', data)
    assert statuses == ["in_flight", "queued", "queued"]
    assert data.count("data-retry-at") == 1


@pytest.mark.django_db(transaction=True)
def test_stream_relays_refresh(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.next_block()
    stream.next_block()
    assert campaign.cancel()

    # After a cancel, one message morphs the header and requests a page refresh.
    broadcasts.broadcast_refresh(campaign)
    relayed = event_data(stream.next_event())

    assert REPLACE_STREAM.findall(relayed) == [("morph", f"campaign_{campaign.pk}_header")]
    assert 'data-campaign-status="cancelled"' in relayed
    assert relayed.endswith('<turbo-stream action="refresh"></turbo-stream>')
