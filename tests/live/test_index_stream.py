"""The campaigns index stream, read over a real socket from the app under uvicorn."""

from __future__ import annotations

import asyncio
import http.client
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Workspace
from campaigns.models import Campaign, Recipient, mark_suppressed
from live import streams
from live.feeds import RECONNECT_DELAY_MS
from live.index_feed import IndexFeed, render_summaries
from live.views import MAX_INDEX_CAMPAIGNS
from tests.factories import session_cookie
from tests.live.sse import READ_TIMEOUT_SECONDS, EventStream, parse_message
from tests.outcomes import set_outcome
from tests.servers import free_port

# The header interval of the `slow_server`: its viewers get at most one event a second.
SLOW_INTERVAL_SECONDS = 1.0

# A summary row in a replace stream: (target, campaign status, version).
SUMMARY_STREAM = re.compile(
    r'<turbo-stream action="replace" target="(campaign_\d+_summary)"><template>\s*'
    r'<tr id="\1" data-campaign-status="(\w+)" data-version="(\d+)">'
)

MakeCampaign = Callable[..., Campaign]


def next_data(stream: EventStream) -> str:
    """Return the data of the next event. Index events carry data lines only: no id, no comment."""
    message = stream.next_event()
    assert message.id is None, f"expected no id in an index event, got {message}"
    assert message.comments == [], f"expected only data: lines in the event, got {message}"
    return message.data


def summaries(data: str) -> dict[str, tuple[str, int]]:
    """Return each summary row in an event as target: (status, version).

    Fails when a row appears twice, because a coalesced event carries each row once.
    """
    found = SUMMARY_STREAM.findall(data)
    targets = [target for target, _, _ in found]
    assert len(targets) == len(set(targets)), f"a row appears twice: {targets}"
    assert len(found) == data.count("<turbo-stream"), f"unexpected streams in {data!r}"
    return {target: (status, int(version)) for target, status, version in found}


def row_html(data: str, campaign: Campaign) -> str:
    start = data.index(f'<tr id="{campaign.dom_id}_summary"')
    return data[start : data.index("</tr>", start)]


def counts(row: str) -> dict[str, str]:
    return dict(re.findall(r'data-count="(\w+)">(\d+)<', row))


def percent(row: str) -> str:
    match = re.search(r"data-progress-percent>(\d+%)<", row)
    assert match is not None, f"no percentage in {row!r}"
    return match.group(1)


def index_path(*campaigns: Campaign) -> str:
    return "/campaigns/stream?ids=" + ",".join(str(c.pk) for c in campaigns)


def announce_outcomes(campaign: Campaign, *recipients: Recipient) -> None:
    """Publish changed rows as the engine does after it commits their outcomes."""
    streams.publish_rows(campaign.pk, [r.pk for r in recipients])


def complete(campaign: Campaign) -> None:
    """Send every remaining recipient, complete the campaign and announce it, as the engine does."""
    remaining = list(campaign.recipients.filter(status=Recipient.Status.QUEUED))
    for recipient in remaining:
        assert set_outcome(recipient, Recipient.Status.SENT)
    announce_outcomes(campaign, *remaining)
    assert campaign.complete()
    streams.publish_campaign(campaign.pk)


OpenStream = Callable[[str, str], EventStream]


@pytest.fixture
def open_stream() -> Iterator[OpenStream]:
    """Return a function that opens an EventStream. All of them are closed after the test."""
    opened: list[EventStream] = []

    def open_(base_url: str, path: str) -> EventStream:
        stream = EventStream(base_url, path, session_cookie())
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()


@pytest.fixture
def connected(open_stream: OpenStream) -> Callable[[str, str], EventStream]:
    """Return a function that opens a stream and reads its `retry:` field and first event."""

    def connect(base_url: str, path: str) -> EventStream:
        stream = open_stream(base_url, path)
        assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
        next_data(stream)
        return stream

    return connect


@pytest.fixture(scope="module")
def slow_server(start_extra_app_server: Callable[[dict[str, str]], str]) -> str:
    """A second server whose viewers get at most one event a second and keep-alives every 0.5 s."""
    return start_extra_app_server(
        {
            "LIVE_HEADER_INTERVAL_SECONDS": str(SLOW_INTERVAL_SECONDS),
            "LIVE_UPDATES_KEEPALIVE_SECONDS": "0.5",
        }
    )


@pytest.fixture
def two_campaigns(make_campaign: MakeCampaign) -> tuple[Campaign, Campaign]:
    first = make_campaign(name="Spring <b>launch</b>")
    second = make_campaign(name="Autumn sale")
    assert first.start()
    assert second.start()
    return first, second


@pytest.mark.django_db
def test_render_summaries_reads_once(make_campaign: MakeCampaign) -> None:
    campaigns = [make_campaign(name=f"Campaign {n}") for n in range(3)]
    deleted_id = campaigns[-1].pk + 1000

    with CaptureQueriesContext(connection) as queries:
        data = render_summaries([c.pk for c in campaigns] + [deleted_id])

    # It should read the campaigns and their counts with one query, whatever their number.
    assert len(queries) == 1, [query["sql"] for query in queries.captured_queries]
    assert set(summaries(data)) == {f"{c.dom_id}_summary" for c in campaigns}


@pytest.mark.django_db(transaction=True)
def test_index_stream_rejects_bad_ids(app_server: str) -> None:
    too_many = ",".join(str(n) for n in range(1, MAX_INDEX_CAMPAIGNS + 2))
    cases = [
        ("/campaigns/stream", "ids is missing"),
        ("/campaigns/stream?ids=", "ids is missing"),
        ("/campaigns/stream?ids=1,,2", "ids must be campaign ids separated by commas"),
        ("/campaigns/stream?ids=1;2", "ids must be campaign ids separated by commas"),
        ("/campaigns/stream?ids=-1", "ids must be campaign ids separated by commas"),
        ("/campaigns/stream?ids=abc", "ids must be campaign ids separated by commas"),
        ("/campaigns/stream?ids=%D9%A2", "ids must be campaign ids separated by commas"),
        (f"/campaigns/stream?ids={'9' * 19}", "not a valid campaign id (too many digits)"),
        (f"/campaigns/stream?ids={too_many}", f"at most {MAX_INDEX_CAMPAIGNS} campaigns"),
    ]
    for path, message in cases:
        connection = http.client.HTTPConnection(
            urlsplit(app_server).netloc, timeout=READ_TIMEOUT_SECONDS
        )
        try:
            connection.request("GET", path, headers=session_cookie())
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()

        assert response.status == 400, path
        assert response.getheader("Content-Type", "").startswith("text/plain"), path
        assert message in body, (path, body)


@pytest.mark.django_db(transaction=True)
def test_index_stream_accepts_max_ids(
    app_server: str, open_stream: OpenStream, two_campaigns: tuple[Campaign, Campaign]
) -> None:
    first, _second = two_campaigns
    # Ids of campaigns that do not exist, up to the limit, with the first campaign's id.
    ids = [first.pk] + [first.pk + 1000 + n for n in range(MAX_INDEX_CAMPAIGNS - 1)]

    stream = open_stream(app_server, "/campaigns/stream?ids=" + ",".join(map(str, ids)))

    assert stream.response.status == 200
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    # It should ignore the ids of campaigns that do not exist.
    assert list(summaries(next_data(stream))) == [f"{first.dom_id}_summary"]


@pytest.mark.django_db(transaction=True)
def test_index_stream_response_headers(
    app_server: str, open_stream: OpenStream, two_campaigns: tuple[Campaign, Campaign]
) -> None:
    stream = open_stream(app_server, index_path(*two_campaigns))

    assert stream.response.status == 200
    content_type = stream.response.getheader("Content-Type", "")
    assert content_type.split(";")[0] == "text/event-stream"
    assert stream.response.getheader("Cache-Control") == "no-cache"
    assert stream.response.getheader("X-Accel-Buffering") == "no"


@pytest.mark.django_db(transaction=True)
def test_index_stream_starts_with_current_rows(
    app_server: str, open_stream: OpenStream, two_campaigns: tuple[Campaign, Campaign]
) -> None:
    first, second = two_campaigns
    sent, failed, _queued = first.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "mailbox full")
    assert second.pause("paused by a test")

    stream = open_stream(app_server, index_path(first, second))

    # It should first tell the browser how long to wait before reconnecting.
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]

    # It should then send one event that replaces both rows with their current state.
    first_block = stream.next_block()
    assert len(first_block) > 1, "expected a multi-line event, so the data: prefixing is exercised"
    message = parse_message(first_block)
    assert message.id is None
    assert message.comments == []
    data = message.data
    rows = summaries(data)
    assert set(rows) == {f"{first.dom_id}_summary", f"{second.dom_id}_summary"}
    assert rows[f"{first.dom_id}_summary"][0] == "processing"
    assert rows[f"{second.dom_id}_summary"][0] == "paused"
    first_row = row_html(data, first)
    assert counts(first_row) == {"sent": "1", "failed": "1", "total": "3"}
    assert percent(first_row) == "66%"
    assert '<progress class="progress" value="2" max="3"' in first_row
    assert counts(row_html(data, second)) == {"sent": "0", "failed": "0", "total": "3"}

    # It should escape campaign names, as the page does.
    assert "Spring &lt;b&gt;launch&lt;/b&gt;" in first_row
    assert "<b>launch</b>" not in data


@pytest.mark.django_db(transaction=True)
def test_index_stream_sends_changed_row(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    first, second = two_campaigns
    stream = connected(app_server, index_path(first, second))
    recipient = first.recipients.order_by("id").first()
    assert recipient is not None
    assert set_outcome(recipient, Recipient.Status.SENT)

    announce_outcomes(first, recipient)
    data = next_data(stream)

    # It should send the row of the campaign whose stream changed, and only that one.
    assert list(summaries(data)) == [f"{first.dom_id}_summary"]
    assert counts(row_html(data, first)) == {"sent": "1", "failed": "0", "total": "3"}
    assert percent(row_html(data, first)) == "33%"


@pytest.mark.django_db
def test_render_summaries_shows_suppressed_count(make_campaign: MakeCampaign) -> None:
    suppressing = make_campaign(name="Suppressing")
    plain = make_campaign(name="Plain")
    assert suppressing.start()
    assert plain.start()
    first, second, _third = suppressing.recipients.order_by("id")
    assert mark_suppressed(suppressing.pk, [first.pk, second.pk], "unsubscribed") == 2

    data = render_summaries([suppressing.pk, plain.pk])

    # It should render the row as the page does: the count only where it is not 0.
    assert counts(row_html(data, suppressing)) == {
        "sent": "0",
        "failed": "0",
        "suppressed": "2",
        "total": "3",
    }
    assert '<span data-count="suppressed">2</span> suppressed' in row_html(data, suppressing)
    assert "suppressed" not in row_html(data, plain)


@pytest.mark.django_db(transaction=True)
def test_index_stream_sends_suppressed_count(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    first, second = two_campaigns
    stream = connected(app_server, index_path(first, second))
    recipient = first.recipients.order_by("id").first()
    assert recipient is not None
    assert mark_suppressed(first.pk, [recipient.pk], "unsubscribed") == 1

    announce_outcomes(first, recipient)
    data = next_data(stream)

    # It should replace the row with one that shows the new count.
    assert list(summaries(data)) == [f"{first.dom_id}_summary"]
    assert counts(row_html(data, first)) == {
        "sent": "0",
        "failed": "0",
        "suppressed": "1",
        "total": "3",
    }
    assert percent(row_html(data, first)) == "33%"


@pytest.mark.django_db(transaction=True)
def test_index_stream_continues_after_newest_entries(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    first, second = two_campaigns
    # Changes announced before the stream opens, which its first event includes.
    recipient = first.recipients.order_by("id").first()
    assert recipient is not None
    assert set_outcome(recipient, Recipient.Status.SENT)
    announce_outcomes(first, recipient)
    streams.publish_campaign(first.pk)
    stream = connected(app_server, index_path(first, second))

    assert second.pause("paused by a test")
    streams.publish_campaign(second.pk)
    data = next_data(stream)

    # It should continue after the entries that the first event covered, not replay them.
    assert list(summaries(data)) == [f"{second.dom_id}_summary"]


@pytest.mark.django_db(transaction=True)
def test_index_stream_skips_other_campaigns(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    watched, other = two_campaigns
    stream = connected(app_server, index_path(watched))

    # A change of a campaign that the page does not show, then one of the watched campaign.
    other_recipient = other.recipients.order_by("id").first()
    watched_recipient = watched.recipients.order_by("id").first()
    assert other_recipient is not None and watched_recipient is not None
    assert set_outcome(other_recipient, Recipient.Status.SENT)
    announce_outcomes(other, other_recipient)
    assert other.pause("paused by a test")
    streams.publish_campaign(other.pk)
    assert set_outcome(watched_recipient, Recipient.Status.FAILED, "mailbox full")
    announce_outcomes(watched, watched_recipient)

    data = next_data(stream)

    # It should send the watched campaign's row and never the other one's.
    assert list(summaries(data)) == [f"{watched.dom_id}_summary"]
    assert other.dom_id not in data


@pytest.mark.django_db(transaction=True)
def test_index_stream_ignores_header_entries(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    first, second = two_campaigns
    stream = connected(app_server, index_path(first, second))

    # A header entry, as a campaign page's feed adds, then a status change of the second campaign.
    streams.publish(first.pk, {"kind": streams.HEADER, "html": "<p>header</p>", "version": "1"})
    assert second.pause("paused by a test")
    streams.publish_campaign(second.pk)
    data = next_data(stream)

    # It should send only the row whose campaign changed.
    rows = summaries(data)
    assert list(rows) == [f"{second.dom_id}_summary"]
    assert rows[f"{second.dom_id}_summary"][0] == "paused"
    assert "<p>header</p>" not in data


@pytest.mark.django_db(transaction=True)
def test_index_stream_coalesces_changes(
    slow_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    first, second = two_campaigns
    stream = connected(slow_server, index_path(first, second))
    first_event_at = time.monotonic()

    # Five changes on two streams, announced one by one.
    for campaign in (first, second, first):
        recipient = campaign.recipients.filter(status=Recipient.Status.QUEUED).first()
        assert recipient is not None
        assert set_outcome(recipient, Recipient.Status.SENT)
        announce_outcomes(campaign, recipient)
    assert second.pause("paused by a test")
    streams.publish_campaign(second.pk)
    streams.publish_refresh(first.pk)
    announced_after = time.monotonic() - first_event_at
    # The server started its interval a little before the client received
    # the first event, so the changes must all be announced well within it.
    assert announced_after < SLOW_INTERVAL_SECONDS / 2, f"announced after {announced_after:.3f} s"

    data = next_data(stream)
    second_event_at = time.monotonic()

    # It should send both rows once, in one event, with the state after every change.
    rows = summaries(data)
    assert set(rows) == {f"{first.dom_id}_summary", f"{second.dom_id}_summary"}
    assert counts(row_html(data, first))["sent"] == "2"
    assert counts(row_html(data, second))["sent"] == "1"
    assert rows[f"{second.dom_id}_summary"][0] == "paused"
    # It should wait out the interval since the first event. The client
    # received that event a little after the server sent it, so the bound
    # is 0.8 s rather than 1 s.
    waited = second_event_at - first_event_at
    assert waited >= 0.8 * SLOW_INTERVAL_SECONDS, f"second event after {waited:.3f} s"

    # It should also wait the interval after this event before sending the next.
    assert second.resume()
    streams.publish_campaign(second.pk)
    data = next_data(stream)
    waited = time.monotonic() - second_event_at
    assert waited >= 0.8 * SLOW_INTERVAL_SECONDS, f"third event after {waited:.3f} s"
    assert summaries(data)[f"{second.dom_id}_summary"][0] == "processing"


@pytest.mark.django_db(transaction=True)
def test_index_stream_sends_final_state(
    slow_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    campaign, _other = two_campaigns
    stream = connected(slow_server, index_path(campaign))
    recipient = campaign.recipients.order_by("id").first()
    assert recipient is not None
    assert set_outcome(recipient, Recipient.Status.SENT)
    announce_outcomes(campaign, recipient)
    data = next_data(stream)
    [(status, partial_version)] = summaries(data).values()
    assert status == "processing"
    assert percent(row_html(data, campaign)) == "33%"

    # The campaign completes right after an event, so within the interval
    # in which the feed sends nothing.
    complete(campaign)
    data = next_data(stream)

    # It should send the completed row with the final counts and a newer version.
    [(status, final_version)] = summaries(data).values()
    assert status == "completed"
    assert final_version > partial_version
    row = row_html(data, campaign)
    assert percent(row) == "100%"
    assert counts(row) == {"sent": "3", "failed": "0", "total": "3"}
    assert 'data-status="completed">Completed<' in row


@pytest.mark.django_db(transaction=True)
def test_index_stream_reconnect_sends_current_rows(
    app_server: str,
    connected: Callable[[str, str], EventStream],
    open_stream: OpenStream,
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    campaign, _other = two_campaigns
    first_stream = connected(app_server, index_path(campaign))
    first_stream.close()
    # The campaign completes while no stream is open.
    complete(campaign)

    stream = open_stream(app_server, index_path(campaign))
    stream.next_block()
    data = next_data(stream)

    # It should start with the current row, which the closed stream never sent.
    assert summaries(data)[f"{campaign.dom_id}_summary"][0] == "completed"
    assert percent(row_html(data, campaign)) == "100%"


@pytest.mark.django_db(transaction=True)
def test_index_stream_sends_keepalive_when_idle(
    slow_server: str,
    connected: Callable[[str, str], EventStream],
    two_campaigns: tuple[Campaign, Campaign],
) -> None:
    stream = connected(slow_server, index_path(*two_campaigns))

    # It should send a keep-alive comment after 0.5 s without events, and go on sending them.
    assert stream.next_block() == [": keep-alive"]
    assert stream.next_block() == [": keep-alive"]


def test_index_feed_ends_cleanly_when_redis_fails(
    settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    async def read_all() -> list[str]:
        return [message async for message in IndexFeed(frozenset({1})).events()]

    # A thread of its own: sync Playwright may keep an event loop running in
    # the main thread after the browser tests.
    with (
        caplog.at_level("WARNING", logger="live.index_feed"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        messages = pool.submit(asyncio.run, read_all()).result()

    # It should end the response after the retry field, rather than raise
    # into the ASGI server, and log why.
    assert messages == [f"retry: {RECONNECT_DELAY_MS}\n\n"]
    [record] = [r for r in caplog.records if r.name == "live.index_feed"]
    assert record.getMessage().startswith(
        "campaigns index: live stream ended because Redis failed:"
    )


@pytest.mark.django_db(transaction=True)
def test_index_stream_leaves_out_other_workspaces(
    app_server: str, open_stream: OpenStream, make_campaign: MakeCampaign
) -> None:
    ours = make_campaign(name="Ours")
    theirs = make_campaign(name="Theirs", workspace=Workspace.objects.create(name="Elsewhere"))

    stream = open_stream(app_server, index_path(ours, theirs))
    assert stream.next_block() == [f"retry: {RECONNECT_DELAY_MS}"]
    data = next_data(stream)

    # The other workspace's campaign is dropped as if it did not exist.
    assert list(summaries(data)) == [f"{ours.dom_id}_summary"]
    assert "Theirs" not in data


@pytest.mark.django_db(transaction=True)
def test_index_stream_without_own_campaigns_is_204(
    app_server: str, make_campaign: MakeCampaign
) -> None:
    theirs = make_campaign(name="Theirs", workspace=Workspace.objects.create(name="Elsewhere"))
    deleted = make_campaign(name="Deleted")
    deleted_id = deleted.pk
    deleted.delete()

    connection = http.client.HTTPConnection(
        urlsplit(app_server).netloc, timeout=READ_TIMEOUT_SECONDS
    )
    try:
        connection.request(
            "GET", f"/campaigns/stream?ids={theirs.pk},{deleted_id}", headers=session_cookie()
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    # Nothing to follow: a 204 makes the browser's EventSource stop reconnecting.
    assert response.status == 204
    assert body == b""
