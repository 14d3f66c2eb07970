"""Viewers' feeds (live.feeds.CampaignFeed) against real Redis and PostgreSQL:
how updates are coalesced, and that the final state always arrives.

Each test runs its feeds in one event loop through async_to_sync, as the
stream view does under uvicorn, in a thread of its own. After the browser
tests, sync Playwright keeps an event loop running in the main thread, and
async_to_sync raises there. The feeds' database reads run in that thread.
Tests use `django_db(transaction=True)` because a header's version is the
position of its read among committed transactions, so every change has to
commit, as it does in the app.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from pytest_django.fixtures import Settings

from campaigns.models import Campaign, Progress, Recipient
from dispatch.engine import run_campaign
from live import broadcasts, feeds, streams
from live.feeds import CampaignFeed
from tests.conftest import StreamEntry, StreamListener
from tests.dispatch.fakes import RecordingProvider, engine_settings
from tests.live.sse import Message, parse_message
from tests.outcomes import claim, set_outcome
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

MakeCampaign = Callable[..., Campaign]
Listen = Callable[[Campaign], StreamListener]

# Seconds that a feed may take to send a message the test waits for.
READ_TIMEOUT_SECONDS = 5.0


class Viewer:
    """One viewer's feed, read message by message as the stream view sends them."""

    def __init__(self, campaign: Campaign, rows: list[Recipient], position: str | None) -> None:
        self.feed = CampaignFeed(campaign.pk, frozenset(r.pk for r in rows), position)
        self.stream: AsyncIterator[str] = self.feed.events()
        self.messages: list[Message] = []
        self.header_target = f"{campaign.dom_id}_header"

    async def read(self) -> Message:
        raw = await asyncio.wait_for(anext(self.stream), READ_TIMEOUT_SECONDS)
        message = parse_message([line for line in raw.split("\n") if line])
        self.messages.append(message)
        return message

    async def read_until(self, condition: Callable[[Message], bool]) -> Message:
        """Read messages until one meets `condition`; fails after READ_TIMEOUT_SECONDS."""
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            message = await self.read()
            if condition(message):
                return message
        raise AssertionError(f"no message met the condition; read {self.messages}")

    async def start(self) -> Message:
        """Read the retry field and the first event, the current state."""
        assert (await self.read()).retry == feeds.RECONNECT_DELAY_MS
        return await self.read()

    @property
    def events(self) -> list[Message]:
        """The messages read that carry data, without the first one, the current state."""
        return [m for m in self.messages if m.data][1:]

    @property
    def headers(self) -> list[str]:
        """The HTML of every header that the feed sent, in order."""
        return [header_html(m.data) for m in self.messages if self.header_target in m.targets]

    async def close(self) -> None:
        await self.stream.aclose()  # type: ignore[attr-defined]


ViewerFactory = Callable[..., Viewer]


@pytest.fixture
def run() -> Callable[[Callable[[ViewerFactory], Awaitable[None]]], None]:
    """Return a function that runs an async scenario with the viewers it opens.

    Thread-sensitive sync_to_async calls, such as the feeds' database reads,
    run in the scenario's thread. Every viewer is closed when the scenario ends.
    """

    def run_(scenario: Callable[[ViewerFactory], Awaitable[None]]) -> None:
        async def main() -> None:
            opened: list[Viewer] = []

            def open_viewer(
                campaign: Campaign, rows: list[Recipient], position: str | None = None
            ) -> Viewer:
                viewer = Viewer(campaign, rows, position)
                opened.append(viewer)
                return viewer

            try:
                await scenario(open_viewer)
            finally:
                for viewer in opened:
                    await viewer.close()

        def in_thread() -> None:
            try:
                async_to_sync(main)()
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(in_thread).result()

    return run_


def header_html(data: str) -> str:
    match = re.search(r'<section id="campaign_\d+_header".*?</section>', data, re.S)
    assert match is not None, f"no header in {data!r}"
    return match.group(0)


def shown_status(header: str) -> str:
    match = re.search(r'data-campaign-status="(\w+)"', header)
    assert match is not None
    return match.group(1)


def shown_progress(header: str) -> Progress:
    counts = dict(re.findall(r'<dd data-count="(\w+)"[^>]*>(\d+)</dd>', header))
    counts.pop("total")
    return Progress(**{name: int(value) for name, value in counts.items()})


def shows(status: str, progress: Progress) -> Callable[[Message], bool]:
    """A condition: the message carries a header with this status and these counts."""

    def condition(message: Message) -> bool:
        if not re.search(r'<section id="campaign_\d+_header"', message.data):
            return False
        header = header_html(message.data)
        return shown_status(header) == status and shown_progress(header) == progress

    return condition


def stored_progress(campaign: Campaign) -> Progress:
    return Campaign.objects.with_progress().get(pk=campaign.pk).progress()


def header_entries(listener: StreamListener) -> list[StreamEntry]:
    return [entry for entry in listener.entries() if entry.kind == "header"]


def started_campaign(make_campaign: MakeCampaign, count: int) -> Campaign:
    campaign = make_campaign(recipients=[{"email": f"user{n}@example.com"} for n in range(count)])
    assert campaign.start()
    return campaign


def recipients(campaign: Campaign) -> list[Recipient]:
    return list(campaign.recipients.order_by("id"))


# Coalescing


def test_burst_of_rows_goes_out_as_one_event(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    # Without a wait between events, what one read returns goes out at once.
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0
    campaign = started_campaign(make_campaign, 5)
    everyone = recipients(campaign)
    page = everyone[:3]
    listener = listen(campaign)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, page)
        await viewer.start()
        # 50 announcements before the feed reads again, 10 of each recipient.
        for recipient in everyone:
            await sync_to_async(set_outcome)(recipient, Recipient.Status.SENT)
        for n in range(50):
            broadcasts.broadcast_recipients(campaign.pk, [everyone[n % 5]])
        *_, newest = listener.entries()

        event = await viewer.read()

        # It should send the page's rows once each, in id order, as one event
        # whose id is the newest entry read.
        assert event.id == newest.id
        assert event.streams == [("", r.dom_id) for r in page]
        assert re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', event.data) == ["sent"] * 3
        # The header follows in the next event: rendered once, for all 50 changes.
        header_event = await viewer.read()
        assert header_event.streams == [("morph", viewer.header_target)]
        assert shown_progress(viewer.headers[-1]) == Progress(sent=5)
        [header] = header_entries(listener)
        assert header_event.id == header.id
        assert header.fields["covers"] == newest.id

    run(scenario)


def test_events_spaced_by_event_interval(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.2
    campaign = started_campaign(make_campaign, 3)
    visible = recipients(campaign)[0]
    listener = listen(campaign)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, [visible])
        await viewer.start()
        last_entry: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def includes_last_entry(message: Message) -> bool:
            return (
                last_entry.done()
                and message.id is not None
                and streams.entry_order(message.id) >= streams.entry_order(last_entry.result())
            )

        reader = asyncio.create_task(viewer.read_until(includes_last_entry))
        started = time.monotonic()

        # About 100 announcements a second for a second, each on its own,
        # while the feed keeps reading.
        for _ in range(100):
            broadcasts.broadcast_recipients(campaign.pk, [visible])
            await asyncio.sleep(0.01)
        *_, last = listener.entries()
        last_entry.set_result(last.id)
        await reader
        elapsed = time.monotonic() - started

        # Each event goes out at least LIVE_EVENT_INTERVAL_SECONDS after the
        # one before, so an event per announcement would break this bound.
        events = viewer.events
        assert len(events) <= elapsed / 0.2 + 1, f"{len(events)} events in {elapsed:.2f} s"
        # The feed read while the entries came, rather than all of them at the end.
        assert sum(visible.dom_id in e.targets for e in events) >= 2

    run(scenario)


def test_header_rendered_once_per_interval(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0.25
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 6)
    everyone = recipients(campaign)
    listener = listen(campaign)

    async def watch(viewer: Viewer) -> None:
        await viewer.read_until(shows("completed", Progress(sent=6)))

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewers = [open_viewer(campaign, everyone[n : n + 2]) for n in (0, 2, 4)]
        for viewer in viewers:
            await viewer.start()
        watchers = [asyncio.create_task(watch(viewer)) for viewer in viewers]
        started = time.monotonic()

        # Changes keep coming for about 1.25 s, so every viewer wants a new
        # header all the time.
        for n in range(125):
            broadcasts.broadcast_recipients(campaign.pk, [everyone[n % 6]])
            await asyncio.sleep(0.01)
        for recipient in everyone:
            await sync_to_async(set_outcome)(recipient, Recipient.Status.SENT)
        assert await sync_to_async(campaign.complete)()
        broadcasts.broadcast_campaign(campaign)
        await asyncio.gather(*watchers)
        elapsed = time.monotonic() - started

        # It should render the header at most once per interval for the
        # campaign, not once per interval for each viewer.
        headers = header_entries(listener)
        assert 2 <= len(headers) <= elapsed / 0.25 + 1, f"{len(headers)} in {elapsed:.2f} s"

    run(scenario)


# The final state


@pytest.fixture
def dispatch_in_thread() -> Any:
    """Return an awaitable that runs one worker loop in another thread, with its own
    database connection, as a worker process would."""

    async def dispatch(campaign: Campaign, **engine_changes: float) -> None:
        def run_loop() -> None:
            try:
                run_campaign(campaign.pk, RecordingProvider(), engine_settings(**engine_changes))
            finally:
                connection.close()

        await asyncio.to_thread(run_loop)

    return dispatch


def test_every_viewer_gets_completed_header(
    make_campaign: MakeCampaign,
    listen: Listen,
    run: Any,
    settings: Settings,
    dispatch_in_thread: Any,
) -> None:
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0.1
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 60)
    everyone = recipients(campaign)
    listen(campaign)

    async def scenario(open_viewer: ViewerFactory) -> None:
        first_page, last_page = everyone[:50], everyone[50:]
        viewers = [open_viewer(campaign, first_page), open_viewer(campaign, last_page)]
        for viewer in viewers:
            await viewer.start()

        final = shows("completed", Progress(sent=60))
        readers = [asyncio.create_task(viewer.read_until(final)) for viewer in viewers]

        await dispatch_in_thread(campaign, batch_size=5, flush_size=5, flush_interval=0.01)
        await asyncio.gather(*readers)

        for viewer, page in zip(viewers, (first_page, last_page), strict=True):
            # Its rows, and only those, arrived, each last shown as sent.
            rows: dict[str, str] = {}
            for event in viewer.events:
                rows.update(re.findall(r'<tr id="(recipient_\d+)" data-status="(\w+)"', event.data))
            assert rows == {r.dom_id: "sent" for r in page}

    run(scenario)
    assert stored_progress(campaign) == Progress(sent=60)


def test_pause_then_in_flight_outcomes_reach_header(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0.1
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 4)
    sent, first_in_flight, second_in_flight, _queued = recipients(campaign)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert claim(first_in_flight)
    assert claim(second_in_flight)
    listen(campaign)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewers = [open_viewer(campaign, [sent]), open_viewer(campaign, [first_in_flight])]
        for viewer in viewers:
            await viewer.start()

        # The pause commits and is announced, as the view does.
        assert await sync_to_async(campaign.pause)("operator")
        broadcasts.broadcast_campaign(campaign)
        paused = shows("paused", Progress(queued=1, in_flight=2, sent=1))
        await asyncio.gather(*(viewer.read_until(paused) for viewer in viewers))
        # The deliveries in flight finish after the pause: the last change.
        for recipient in (first_in_flight, second_in_flight):
            assert await sync_to_async(set_outcome)(recipient, Recipient.Status.SENT)
        broadcasts.broadcast_recipients(campaign.pk, [first_in_flight, second_in_flight])

        final = shows("paused", Progress(queued=1, sent=3))
        await asyncio.gather(*(viewer.read_until(final) for viewer in viewers))

    run(scenario)
    assert stored_progress(campaign) == Progress(queued=1, sent=3)


def test_last_change_during_other_viewers_header_arrives(
    make_campaign: MakeCampaign,
    listen: Listen,
    run: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One viewer holds the header lease and renders the header. The campaign
    # completes while it renders: after the viewer read the stream position
    # that its header covers, before its header reaches the stream. That
    # header shows the campaign processing and covers less than the last
    # change, so a viewer must render another once the lease expires.
    settings.LIVE_HEADER_INTERVAL_SECONDS = 1.0
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 2)
    first, last = recipients(campaign)
    listener = listen(campaign)
    lease = redis.Redis.from_url(settings.REDIS_URL)
    completion: dict[str, Any] = {}
    render = feeds.render_header_stream

    def render_then_complete(campaign_id: int) -> tuple[str, int] | None:
        rendered = render(campaign_id)
        if not completion:
            assert set_outcome(last, Recipient.Status.SENT)
            assert campaign.complete()
            broadcasts.broadcast_recipients(campaign.pk, [last])
            broadcasts.broadcast_campaign(campaign)
            completion["entries"] = listener.entries()
            completion["lease_ms"] = lease.pttl(streams.header_lease_key(campaign.pk))
        return rendered

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewers = [open_viewer(campaign, [first]), open_viewer(campaign, [last])]
        for viewer in viewers:
            await viewer.start()
        monkeypatch.setattr(feeds, "render_header_stream", render_then_complete)

        assert await sync_to_async(set_outcome)(first, Recipient.Status.SENT)
        broadcasts.broadcast_recipients(campaign.pk, [first])
        final = shows("completed", Progress(sent=2))
        await asyncio.gather(*(viewer.read_until(final) for viewer in viewers))

    run(scenario)
    lease.close()

    # The completion landed while the lease was held.
    assert completion["lease_ms"] > 0
    *_, last_change = completion["entries"]
    assert last_change.fields == {"kind": "campaign"}
    headers = header_entries(listener)
    assert len(headers) == 2
    stale, covering = headers
    assert shown_status(stale.fields["html"]) == "processing"
    assert streams.entry_order(stale.fields["covers"]) < streams.entry_order(last_change.id)
    assert shown_status(covering.fields["html"]) == "completed"
    assert covering.fields["covers"] == stale.id
    assert int(covering.fields["version"]) > int(stale.fields["version"])


def test_final_header_after_lease_held_elsewhere(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    # A viewer on another server took the lease and went away without adding
    # a header. The viewers here wait for the lease to expire, then render.
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0.1
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 1)
    [recipient] = recipients(campaign)
    listener = listen(campaign)
    client = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, [recipient])
        await viewer.start()
        held_from = time.monotonic()
        assert client.set(streams.header_lease_key(campaign.pk), "1", px=500)

        assert await sync_to_async(set_outcome)(recipient, Recipient.Status.SENT)
        assert await sync_to_async(campaign.complete)()
        broadcasts.broadcast_recipients(campaign.pk, [recipient])
        broadcasts.broadcast_campaign(campaign)
        await viewer.read_until(shows("completed", Progress(sent=1)))

        # No header came while the lease was held, and one came after.
        assert time.monotonic() - held_from >= 0.5
        assert len(header_entries(listener)) == 1

    run(scenario)
    client.close()


def test_change_during_first_render_is_sent(
    make_campaign: MakeCampaign,
    listen: Listen,
    run: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A delivery commits and is announced while a new viewer's feed renders
    # the current state, after its database read. The feed read the stream
    # position before the database, so it sends the change next.
    settings.LIVE_EVENT_INTERVAL_SECONDS = 0.05
    campaign = started_campaign(make_campaign, 2)
    first, second = recipients(campaign)
    listen(campaign)
    render = feeds.render_state

    def render_then_deliver(campaign_id: int, recipient_ids: frozenset[int]) -> str:
        state = render(campaign_id, recipient_ids)
        assert set_outcome(second, Recipient.Status.SENT)
        broadcasts.broadcast_recipients(campaign_id, [second])
        return state

    monkeypatch.setattr(feeds, "render_state", render_then_deliver)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, [first, second])
        state = await viewer.start()
        assert re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', state.data) == [
            "queued",
            "queued",
        ]

        event = await viewer.read_until(lambda m: second.dom_id in m.targets)

        assert second.dom_id in event.targets
        assert re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', event.data) == ["sent"]

    run(scenario)


def test_feed_of_deleted_campaign_sends_no_header(
    make_campaign: MakeCampaign, listen: Listen, run: Any, settings: Settings
) -> None:
    campaign = make_campaign()
    page = recipients(campaign)
    listener = listen(campaign)

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, page)
        await viewer.start()
        campaign_id = campaign.pk
        assert await sync_to_async(campaign.delete_if_pending)()

        streams.publish_campaign(campaign_id)
        [change] = listener.entries()

        # It should only move the viewer's position past the change, rather
        # than send a header for a campaign that is gone.
        assert await viewer.read() == Message(change.id, "", ["position"])
        assert header_entries(listener) == []

    run(scenario)


def test_feed_ends_cleanly_when_redis_fails(
    make_campaign: MakeCampaign, run: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    campaign = make_campaign()
    page = recipients(campaign)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario(open_viewer: ViewerFactory) -> None:
        viewer = open_viewer(campaign, page)
        assert (await viewer.read()).retry == feeds.RECONNECT_DELAY_MS
        # It should end the response, so that the browser reconnects, rather
        # than raise into the ASGI server.
        with pytest.raises(StopAsyncIteration):
            await viewer.read()

    with caplog.at_level("WARNING", logger="live.feeds"):
        run(scenario)

    [record] = [r for r in caplog.records if r.name == "live.feeds"]
    assert record.getMessage().startswith(
        f"campaign {campaign.pk}: live stream ended because Redis failed:"
    )
