"""The campaign stream view, read over a real socket from the app under uvicorn.

The server runs with the default live-update intervals. The test process adds
entries to the same Redis streams as workers do, through live.broadcasts.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from live import broadcasts, streams
from live.feeds import RECONNECT_DELAY_MS
from live.views import MAX_VISIBLE_ROWS
from tests.conftest import StreamListener
from tests.factories import session_cookie
from tests.live.sse import READ_TIMEOUT_SECONDS, EventStream, Message, parse_message
from tests.outcomes import claim, set_outcome
from tests.servers import running_servers, wait_until

Listen = Callable[[Campaign], StreamListener]


OpenStream = Callable[..., EventStream]


@pytest.fixture
def open_stream() -> Iterator[OpenStream]:
    """Return a function that opens an EventStream. All of them are closed after the test."""
    opened: list[EventStream] = []

    def open_(
        base_url: str,
        path: str,
        headers: dict[str, str] | None = None,
        timeout: float = READ_TIMEOUT_SECONDS,
    ) -> EventStream:
        stream = EventStream(base_url, path, {**session_cookie(), **(headers or {})}, timeout)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign], listen: Listen) -> Campaign:
    campaign = make_campaign(
        name="Launch <i>now</i>",
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "<b>x</b>", "phone_number": "+12025550101"},
            {"name": "Alan", "email": "alan@example.com", "phone_number": "+12025550102"},
        ],
    )
    # The listener deletes the campaign's stream after the test.
    listen(campaign)
    return campaign


def recipients(campaign: Campaign) -> list[Recipient]:
    return list(campaign.recipients.order_by("id"))


def stream_path(
    campaign: Campaign, rows: list[Recipient] | None = None, after: str | None = None
) -> str:
    """The stream URL of a page that shows `rows` (every recipient by default)."""
    page_rows = recipients(campaign) if rows is None else rows
    query = {"ids": ",".join(str(r.pk) for r in page_rows)}
    if after is not None:
        query["after"] = after
    return f"/campaigns/{campaign.pk}/stream?{urlencode(query, safe=',')}"


def header_target(campaign: Campaign) -> str:
    return f"campaign_{campaign.pk}_header"


def snapshot_streams(campaign: Campaign, rows: list[Recipient]) -> list[tuple[str, str]]:
    """What a snapshot replaces: the header (morphed), then the rows in id order."""
    return [("morph", header_target(campaign))] + [("", r.dom_id) for r in rows]


def newest_entry_id(campaign: Campaign, redis_client: redis.Redis) -> str:
    newest = cast(
        list[tuple[bytes, Any]], redis_client.xrevrange(streams.stream_key(campaign.pk), count=1)
    )
    [(entry_id, _fields)] = newest
    return entry_id.decode()


# Requests


@pytest.mark.django_db(transaction=True)
def test_stream_unknown_campaign_is_404(app_server: str) -> None:
    connection = http.client.HTTPConnection(
        urlsplit(app_server).netloc, timeout=READ_TIMEOUT_SECONDS
    )
    try:
        connection.request("GET", "/campaigns/987654321/stream", headers=session_cookie())
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
@pytest.mark.parametrize(
    "ids",
    ["abc", "1,,2", "1;2", "-1", ",1", "1,", "1 2", "1.5", "\u0662\u0666"],
    ids=[
        "letters",
        "empty-part",
        "semicolon",
        "negative",
        "leading",
        "trailing",
        "space",
        "dot",
        "arabic-indic-digits",
    ],
)
def test_stream_rejects_malformed_ids(app_server: str, campaign: Campaign, ids: str) -> None:
    query = urlencode({"ids": ids})
    status, content_type, body = get(app_server, f"/campaigns/{campaign.pk}/stream?{query}")

    assert status == 400
    assert content_type == "text/plain; charset=utf-8"
    assert body == "ids must be recipient ids separated by commas, such as 12,13,14."


@pytest.mark.django_db(transaction=True)
def test_stream_rejects_too_long_id(app_server: str, campaign: Campaign) -> None:
    too_long = "1" * 19
    path = f"/campaigns/{campaign.pk}/stream?ids=5,{too_long}"

    status, _content_type, body = get(app_server, path)

    assert status == 400
    assert body == f"ids contains {too_long}, which is not a valid recipient id (too many digits)."


@pytest.mark.django_db(transaction=True)
def test_stream_rejects_too_many_ids(app_server: str, campaign: Campaign) -> None:
    too_many = ",".join(str(n) for n in range(1, MAX_VISIBLE_ROWS + 2))

    status, _content_type, body = get(app_server, f"/campaigns/{campaign.pk}/stream?ids={too_many}")

    assert status == 400
    assert body == f"ids may name at most {MAX_VISIBLE_ROWS} recipients."


@pytest.mark.django_db(transaction=True)
def test_stream_accepts_max_ids(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    # Ids of recipients that do not exist, or belong to another campaign, are
    # accepted and never match a row.
    max_ids = ",".join(str(n) for n in range(1, MAX_VISIBLE_ROWS + 1))

    stream = open_stream(app_server, f"/campaigns/{campaign.pk}/stream?ids={max_ids}")

    assert stream.response.status == 200


def get(base_url: str, path: str) -> tuple[int, str, str]:
    """GET `path`; returns the status, the Content-Type and the body of a short response."""
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=READ_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=session_cookie())
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


# First connection: the current state


@pytest.mark.django_db(transaction=True)
def test_stream_starts_with_retry_and_snapshot(
    app_server: str, open_stream: OpenStream, campaign: Campaign, redis_client: redis.Redis
) -> None:
    broadcasts.broadcast_campaign(campaign)
    broadcasts.broadcast_refresh(campaign.pk)
    newest = newest_entry_id(campaign, redis_client)
    stream = open_stream(app_server, stream_path(campaign))

    # It should first tell the browser how long to wait before reconnecting.
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]

    # It should then send one event that morphs the header and replaces every
    # row of the page, in id order. Its id is the newest entry, which the
    # state includes, so a reconnect resumes after it.
    block = stream.next_block()
    assert len(block) > 2, "expected a multi-line event, so the data: prefixing is exercised"
    snapshot = parse_message(block)
    assert snapshot.id == newest
    assert snapshot.streams == snapshot_streams(campaign, recipients(campaign))
    assert 'data-status="queued"' in snapshot.data
    assert 'data-campaign-status="pending"' in snapshot.data
    assert re.search(r'data-campaign-status="pending" data-version="\d+"', snapshot.data)


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_of_empty_stream(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))

    snapshot = stream.start()

    assert snapshot.id == streams.START
    assert snapshot.streams == snapshot_streams(campaign, recipients(campaign))


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_has_only_page_rows(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    first, _second, third = recipients(campaign)

    stream = open_stream(app_server, stream_path(campaign, [third, first]))

    assert stream.start().streams == snapshot_streams(campaign, [first, third])


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_without_rows(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign, []))

    assert stream.start().streams == snapshot_streams(campaign, [])


@pytest.mark.django_db(transaction=True)
def test_stream_escapes_user_content(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))

    data = stream.start().data

    assert "&lt;b&gt;x&lt;/b&gt;" in data
    assert "<b>x</b>" not in data
    assert "Launch &lt;i&gt;now&lt;/i&gt;" in data
    assert "<i>now</i>" not in data


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_shows_outcomes(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    sent, failed, queued = recipients(campaign)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "number not reachable")

    stream = open_stream(app_server, stream_path(campaign))
    data = stream.start().data

    statuses = re.findall(
        r'<tr id="(recipient_\d+)" data-status="(\w+)" data-version="(\d+)"', data
    )
    assert statuses == [
        (sent.dom_id, Recipient.Status.SENT, str(sent.version)),
        (failed.dom_id, Recipient.Status.FAILED, str(failed.version)),
        (queued.dom_id, Recipient.Status.QUEUED, str(queued.version)),
    ]
    assert "number not reachable" in data


@pytest.mark.django_db(transaction=True)
def test_stream_snapshot_shows_paused_campaign(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    assert campaign.start()
    in_flight, retrying, _queued = recipients(campaign)
    assert claim(in_flight)
    retry_at = timezone.now() + timedelta(minutes=5)
    assert set_outcome(
        retrying, Recipient.Status.QUEUED, "timed out", transient=True, retry_at=retry_at
    )
    assert campaign.pause("3 failures since the last resume (limit 3)")

    stream = open_stream(app_server, stream_path(campaign))
    data = stream.start().data

    # It should render the same header as the page: status, reason, Resume button.
    assert 'data-campaign-status="paused"' in data
    assert "Paused: 3 failures since the last resume (limit 3)" in data
    assert ">Resume</button>" in data
    assert ">Pause</button>" not in data
    statuses = re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', data)
    assert statuses == ["in_flight", "queued", "queued"]
    assert data.count("data-retry-at") == 1


# Reconnects: resume where the viewer stopped, or start again from the current state


@pytest.mark.django_db(transaction=True)
def test_stream_resumes_after_position(
    app_server: str, open_stream: OpenStream, campaign: Campaign, listen: Listen
) -> None:
    first, second, _third = recipients(campaign)
    listener = listen(campaign)
    broadcasts.broadcast_recipients(campaign.pk, [first])
    assert set_outcome(second, Recipient.Status.SENT)
    broadcasts.broadcast_recipients(campaign.pk, [second])
    seen, missed = listener.entries()

    stream = open_stream(app_server, stream_path(campaign, after=seen.id))

    # It should send what came after the position, and no snapshot: only the
    # row of the missed entry, with the entry's id.
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    event = stream.next_event()
    assert event.id == missed.id
    assert event.streams == [("", second.dom_id)]
    assert 'data-status="sent"' in event.data


@pytest.mark.django_db(transaction=True)
def test_stream_resumes_from_last_event_id(
    app_server: str, open_stream: OpenStream, campaign: Campaign, listen: Listen
) -> None:
    first, second, third = recipients(campaign)
    listener = listen(campaign)
    broadcasts.broadcast_recipients(campaign.pk, [first])
    broadcasts.broadcast_recipients(campaign.pk, [second])
    broadcasts.broadcast_recipients(campaign.pk, [third])
    page_position, last_event, missed = listener.entries()

    # The browser's Last-Event-ID is newer than the page's position, and wins.
    stream = open_stream(
        app_server,
        stream_path(campaign, after=page_position.id),
        headers={"Last-Event-ID": last_event.id},
    )

    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    event = stream.next_event()
    assert event.id == missed.id
    assert event.streams == [("", third.dom_id)]


@pytest.mark.django_db(transaction=True)
def test_stream_resumes_from_start_of_untrimmed_stream(
    app_server: str, open_stream: OpenStream, campaign: Campaign, listen: Listen
) -> None:
    # A page rendered before the stream had entries starts from 0-0.
    first, _second, third = recipients(campaign)
    listener = listen(campaign)
    broadcasts.broadcast_recipients(campaign.pk, [third, first])
    [entry] = listener.entries()

    stream = open_stream(app_server, stream_path(campaign, after=streams.START))

    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    event = stream.next_event()
    assert event.id == entry.id
    assert event.streams == [("", first.dom_id), ("", third.dom_id)]


@pytest.mark.django_db(transaction=True)
def test_stream_from_start_without_stream_sends_state(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    # With no stream at all, entries may have expired or been lost with a
    # Redis restart, so a viewer at 0-0 gets the current state.
    stream = open_stream(app_server, stream_path(campaign, after=streams.START))

    snapshot = stream.start()

    assert snapshot.id == streams.START
    assert snapshot.streams == snapshot_streams(campaign, recipients(campaign))


@pytest.mark.django_db(transaction=True)
def test_stream_resume_renders_header(
    app_server: str, open_stream: OpenStream, campaign: Campaign, listen: Listen
) -> None:
    # The header that the viewer has may predate the changes it has, so a
    # resumed stream renders one that covers its position.
    first, _second, _third = recipients(campaign)
    listener = listen(campaign)
    assert campaign.start()
    assert set_outcome(first, Recipient.Status.SENT)
    broadcasts.broadcast_recipients(campaign.pk, [first])
    [position] = listener.entries()

    stream = open_stream(app_server, stream_path(campaign, after=position.id))
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    event = stream.next_event()

    assert event.streams == [("morph", header_target(campaign))]
    assert 'data-campaign-status="processing"' in event.data
    assert '<dd data-count="sent" class="text-emerald-700">1</dd>' in event.data
    [header] = listener.entries()
    assert header.kind == "header"
    assert header.fields["covers"] == position.id
    assert event.id == header.id


def trim_to_newest(campaign: Campaign, redis_client: redis.Redis) -> None:
    assert redis_client.xtrim(streams.stream_key(campaign.pk), maxlen=1, approximate=False) > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("position", "trimmed"),
    [
        ("first", True),
        (streams.START, True),
        ("99999999999999-0", False),
        ("1-1", False),
        ("yesterday", False),
        ("1-1-1", False),
        ("99999999999999999999-0", False),
        ("\u0661-0", False),
    ],
    ids=[
        "trimmed",
        "start-of-trimmed",
        "unknown-future",
        "unknown-past",
        "malformed",
        "extra",
        "beyond-64-bits",
        "arabic-indic-digit",
    ],
)
def test_stream_sends_snapshot_when_position_is_lost(
    app_server: str,
    open_stream: OpenStream,
    campaign: Campaign,
    listen: Listen,
    redis_client: redis.Redis,
    position: str,
    trimmed: bool,
) -> None:
    listener = listen(campaign)
    broadcasts.broadcast_campaign(campaign)
    broadcasts.broadcast_campaign(campaign)
    first, newest = listener.entries()
    if trimmed:
        trim_to_newest(campaign, redis_client)
    after = first.id if position == "first" else position

    stream = open_stream(app_server, stream_path(campaign, after=after))

    snapshot = stream.start()
    assert snapshot.id == newest.id
    assert snapshot.streams == snapshot_streams(campaign, recipients(campaign))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("last_event_id", ["yesterday", "1-1"], ids=["malformed", "unknown"])
def test_stream_sends_snapshot_for_lost_last_event_id(
    app_server: str,
    open_stream: OpenStream,
    campaign: Campaign,
    listen: Listen,
    last_event_id: str,
) -> None:
    listener = listen(campaign)
    broadcasts.broadcast_campaign(campaign)
    broadcasts.broadcast_campaign(campaign)
    page_position, newest = listener.entries()

    stream = open_stream(
        app_server,
        stream_path(campaign, after=page_position.id),
        headers={"Last-Event-ID": last_event_id},
    )

    snapshot = stream.start()
    assert snapshot.id == newest.id
    assert snapshot.streams == snapshot_streams(campaign, recipients(campaign))


# Live updates


@pytest.mark.django_db(transaction=True)
def test_stream_sends_changed_row_and_header(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.start()
    assert campaign.start()
    recipient = recipients(campaign)[0]
    assert set_outcome(recipient, Recipient.Status.FAILED, "mailbox full")
    before = time.time()

    broadcasts.broadcast_recipients(campaign.pk, [recipient])
    events = stream.events_until(
        lambda events: any(header_target(campaign) in e.targets for e in events)
    )

    # It should send the row as the database has it now, with its version and
    # the commit time, and then the header with the new counts.
    [row_event] = [e for e in events if recipient.dom_id in e.targets]
    row = re.search(r'<tr id="recipient_\d+" [^>]*>', row_event.data)
    assert row is not None
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', row.group(0)))
    assert attributes["data-status"] == "failed"
    assert attributes["data-version"] == str(recipient.version)
    # The time is rendered in milliseconds, rounded.
    assert before - 0.001 <= float(attributes["data-committed-at"]) <= time.time()
    assert "mailbox full" in row_event.data
    header_event = events[-1]
    assert header_event.streams[0] == ("morph", header_target(campaign))
    assert '<dd data-count="failed" class="text-rose-700">1</dd>' in header_event.data
    assert 'data-campaign-status="processing"' in header_event.data


@pytest.mark.django_db(transaction=True)
def test_stream_never_sends_other_rows(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    visible, *others = recipients(campaign)
    stream = open_stream(app_server, stream_path(campaign, [visible]))
    stream.start()
    assert campaign.start()
    for recipient in (*others, visible):
        assert set_outcome(recipient, Recipient.Status.SENT)

    broadcasts.broadcast_recipients(campaign.pk, others)
    broadcasts.broadcast_recipients(campaign.pk, [visible, *others])
    events = stream.events_until(
        lambda events: (
            any('<dd data-count="sent" class="text-emerald-700">3</dd>' in e.data for e in events)
            and any(visible.dom_id in e.targets for e in events)
        )
    )

    targets = [target for event in events for target in event.targets]
    assert set(targets) == {visible.dom_id, header_target(campaign)}
    assert targets.count(visible.dom_id) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("request_id", [None, "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41"])
def test_stream_relays_refresh(
    app_server: str, open_stream: OpenStream, campaign: Campaign, request_id: str | None
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.start()
    assert campaign.cancel()

    broadcasts.broadcast_refresh(campaign.pk, request_id)
    refresh = broadcasts.refresh_stream(request_id)
    events = stream.events_until(lambda events: any(refresh in e.data for e in events))

    # It should relay the refresh as it is, and then the header, because the
    # refresh stands for a change.
    assert events[-1].data.endswith(refresh)
    assert events[-1].data.count("<turbo-stream") == len(events[-1].targets) + 1
    stream.events_until(
        lambda more: any('data-campaign-status="cancelled"' in e.data for e in events + more)
    )


@pytest.mark.django_db(transaction=True)
def test_stream_skips_older_header(
    app_server: str,
    open_stream: OpenStream,
    campaign: Campaign,
    listen: Listen,
    redis_client: redis.Redis,
) -> None:
    stream = open_stream(app_server, stream_path(campaign))
    stream.start()
    listener = listen(campaign)
    broadcasts.broadcast_campaign(campaign)
    header_event = stream.next_event()
    _change, header = listener.entries()
    assert header_event.id == header.id
    version = int(header.fields["version"])

    # A header read from an older snapshot, as a slow server may add late.
    added = redis_client.xadd(
        streams.stream_key(campaign.pk),
        {
            "kind": "header",
            "html": "<p>older</p>",
            "version": str(version - 1),
            "covers": header.fields["covers"],
        },
    )
    late = cast(bytes, added).decode()

    # It should not send the older header, but move the browser's last event
    # id past it, with a message that carries no event.
    assert parse_message(stream.next_block()) == Message(late, "", ["position"])


@pytest.fixture(scope="module")
def quick_keepalive_server(start_extra_app_server: Callable[[dict[str, str]], str]) -> str:
    """A second server that sends a keep-alive comment after 0.5 s without messages."""
    return start_extra_app_server({"LIVE_UPDATES_KEEPALIVE_SECONDS": "0.5"})


@pytest.mark.django_db(transaction=True)
def test_stream_sends_keepalive_when_idle(
    quick_keepalive_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(quick_keepalive_server, stream_path(campaign))
    stream.start()
    snapshot_received = time.monotonic()

    # It should send the first keep-alive after 0.5 s without messages, not at once.
    assert stream.next_block() == [": keep-alive"]
    first_keepalive_after = time.monotonic() - snapshot_received
    # The client starts timing when the snapshot arrives, a little after the
    # server sent it, so the bound is 0.4 s rather than 0.5 s.
    assert first_keepalive_after >= 0.4, f"keep-alive after {first_keepalive_after:.3f} s"

    # It should go on sending them while the stream stays idle.
    assert stream.next_block() == [": keep-alive"]


@pytest.fixture(scope="module")
def slow_keepalive_server(start_extra_app_server: Callable[[dict[str, str]], str]) -> str:
    """A server whose idle streams wait 6 s for a keep-alive, longer than the 5 s
    after which redis-py 8 gives up on a reply by default."""
    return start_extra_app_server({"LIVE_UPDATES_KEEPALIVE_SECONDS": "6"})


@pytest.mark.django_db(transaction=True)
def test_stream_stays_open_while_idle(
    slow_keepalive_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    stream = open_stream(slow_keepalive_server, stream_path(campaign), timeout=10)
    stream.start()
    snapshot_received = time.monotonic()

    # It should wait for entries across reads, and neither end the stream nor
    # send a keep-alive early.
    assert stream.next_block() == [": keep-alive"]
    assert time.monotonic() - snapshot_received >= 5.9


# Disconnects


def redis_connections(pid: int) -> set[int]:
    """Return the socket inodes of the process's established TCP connections to Redis."""
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except FileNotFoundError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            inodes.add(int(target.removeprefix("socket:[").removesuffix("]")))
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            inode = int(fields[9])
            if established and remote_port == redis_port and inode in inodes:
                connected.add(inode)
    return connected


@pytest.mark.django_db(transaction=True)
def test_stream_closes_redis_connection_on_disconnect(
    app_server: str, open_stream: OpenStream, campaign: Campaign
) -> None:
    [server] = [s for s in running_servers() if s.base_url == app_server]
    before = redis_connections(server.process.pid)
    stream = open_stream(app_server, stream_path(campaign))
    stream.start()
    # The view's read of the stream waits on a connection of its own.
    opened = redis_connections(server.process.pid) - before
    assert opened, "the server opened no Redis connection for the stream"

    stream.close()

    # This server sends a keep-alive only every 15 s (the default), so the
    # server must notice the disconnect itself, not through a failed write.
    wait_until(
        lambda: not opened & redis_connections(server.process.pid),
        timeout=5,
        failure_message="the server still holds the stream's Redis connection after the "
        "client disconnected",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/campaigns/1/stream", "/campaigns/stream?ids=1"])
def test_stream_without_sign_in_is_401(app_server: str, path: str) -> None:
    connection = http.client.HTTPConnection(
        urlsplit(app_server).netloc, timeout=READ_TIMEOUT_SECONDS
    )
    try:
        connection.request("GET", path, headers={"Accept": "text/event-stream"})
        response = connection.getresponse()

        assert response.status == 401
        assert response.read().decode() == "Sign in first.\n"
    finally:
        connection.close()
