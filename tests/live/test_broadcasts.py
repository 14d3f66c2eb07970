"""What workers and views announce on a campaign's live-update stream, and the
Turbo Streams that the stream views render from the database.

Workers add compact entries after each commit and render nothing: the stream
views render what their viewers show (tests/live/test_feeds.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.template import Template
from django.test import RequestFactory
from django.test.signals import template_rendered
from django.utils import timezone

from campaigns.content import CONTENT_ENGINE
from campaigns.models import Campaign, Recipient
from dispatch import claims
from dispatch.engine import run_campaign
from dispatch.providers import Delivery
from dispatch.sweep import sweep
from dispatch.tasks import start_campaign
from live import broadcasts, feeds, streams
from tests.conftest import StreamEntry, StreamListener
from tests.dispatch.fakes import RecordingProvider, engine_settings
from tests.servers import free_port

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]
Listen = Callable[[Campaign], StreamListener]

# One recipient per claim and per flush, so each outcome is its own entry.
ONE_BY_ONE = engine_settings(
    concurrency=1,
    batch_size=1,
    flush_interval=0.01,
    flush_size=1,
    max_attempts=1,
    retry_wait_seconds=0,
)
# One claim for every recipient and no flush before the loop runs out of
# work, so every outcome goes into one flush.
ONE_FLUSH = engine_settings(
    concurrency=4,
    batch_size=10,
    flush_interval=60,
    flush_size=100,
    max_attempts=1,
    retry_wait_seconds=0,
)

# Seconds that a test waits for a worker loop in a thread to reach a state.
THREAD_TIMEOUT_SECONDS = 30.0

# The fields that each kind of entry may carry. None of them contains HTML.
ENTRY_FIELDS = {
    "rows": {"kind", "ids", "at"},
    "claims": {"kind", "ids", "at"},
    "campaign": {"kind"},
    "refresh": {"kind", "request_id"},
}

# A replace stream: the header is morphed into the page, a row is swapped out.
STREAM = re.compile(
    r'<turbo-stream action="replace"(?: method="(morph)")? target="([^"]+)">'
    r"<template>(.*?)</template>",
    re.S,
)


def turbo_streams(html: str) -> list[tuple[str, str, str]]:
    """The (method, target, html) of each replace stream; method is "" or "morph"."""
    return STREAM.findall(html)


def targets(html: str) -> list[str]:
    return [target for _, target, _ in turbo_streams(html)]


def kinds(entries: list[StreamEntry]) -> list[str]:
    """Return the kind of each entry, leaving out claims (test_claims_are_announced)."""
    return [entry.kind for entry in entries if entry.kind != "claims"]


def without_claims(entries: list[StreamEntry]) -> list[StreamEntry]:
    return [entry for entry in entries if entry.kind != "claims"]


def recipient_ids(campaign: Campaign) -> list[int]:
    return list(campaign.recipients.order_by("id").values_list("id", flat=True))


@pytest.fixture
def rendered_templates() -> Iterator[list[str]]:
    """Collect the name of every page template rendered during the test.

    pytest-django instruments template rendering as Django's test runner
    does, so each render sends `template_rendered`. Message content, which
    workers render per recipient, is compiled from a string by the sandboxed
    engine of campaigns/content.py and is left out.
    """
    names: list[str] = []

    def record(sender: Any, template: Template, **kwargs: Any) -> None:
        if template.engine is not CONTENT_ENGINE:
            names.append(template.name or "")

    template_rendered.connect(record)
    yield names
    template_rendered.disconnect(record)


# Workers


def test_start_announces_campaign(make_campaign: MakeCampaign, listen: Listen, job_queue) -> None:
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)

    assert start_campaign(campaign.pk)

    assert [entry.fields for entry in listener.entries()] == [{"kind": "campaign"}]
    # It should wake the configured number of worker loops.
    assert len(job_queue()) == 4


def test_loop_announces_rows_after_each_flush(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)
    before = time.time()

    run_campaign(campaign.pk, RecordingProvider(), ONE_BY_ONE)

    after = time.time()
    entries = without_claims(listener.entries())
    # It should announce each flush's row, in claim order, then the completion.
    assert kinds(entries) == ["rows", "rows", "rows", "campaign"]
    assert [entry.recipient_ids for entry in entries[:3]] == [
        [pk] for pk in recipient_ids(campaign)
    ]
    # Each rows entry should carry when its flush committed, in Unix seconds.
    committed_at = [float(entry.fields["at"]) for entry in entries[:3]]
    assert committed_at == sorted(committed_at)
    assert before <= committed_at[0]
    assert committed_at[-1] <= after
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


def test_claims_are_announced(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)

    run_campaign(campaign.pk, RecordingProvider(), ONE_BY_ONE)

    entries = listener.entries()
    claimed = [entry for entry in entries if entry.kind == "claims"]
    # One claim of one recipient at a time, each announced before its outcome.
    assert [entry.recipient_ids for entry in claimed] == [[pk] for pk in recipient_ids(campaign)]
    for pk in recipient_ids(campaign):
        order = [e.kind for e in entries if e.kind != "campaign" and e.recipient_ids == [pk]]
        assert order == ["claims", "rows"]


def test_flush_announces_its_rows_in_one_entry(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)

    run_campaign(campaign.pk, RecordingProvider(), ONE_FLUSH)

    entries = without_claims(listener.entries())
    assert kinds(entries) == ["rows", "campaign"]
    assert sorted(entries[0].recipient_ids) == recipient_ids(campaign)


def test_retry_announces_queued_row(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign(recipients=[{"email": "flaky@example.com"}])
    campaign.start()
    listener = listen(campaign)
    provider = RecordingProvider(transient={"flaky@example.com": "timed out"})
    retry_once = engine_settings(
        concurrency=1, batch_size=1, flush_interval=0.01, flush_size=1, max_attempts=2
    )

    run_campaign(campaign.pk, provider, retry_once)

    entries = without_claims(listener.entries())
    recipient = campaign.recipients.get()
    # The failed attempt and the delivery are two changes of the row.
    assert kinds(entries) == ["rows", "rows", "campaign"]
    assert entries[0].recipient_ids == entries[1].recipient_ids == [recipient.pk]
    assert recipient.status == Recipient.Status.SENT


def test_workers_render_nothing(
    make_campaign: MakeCampaign, listen: Listen, rendered_templates: list[str]
) -> None:
    campaign = make_campaign(
        recipients=[
            {"name": "<b>Ada</b>", "email": "ada@example.com"},
            {"name": "Grace", "email": "grace@fail.example.com"},
        ]
    )
    campaign.start()
    listener = listen(campaign)
    provider = RecordingProvider(permanent={"grace@fail.example.com": "mailbox unavailable"})

    assert start_campaign(campaign.pk)
    run_campaign(campaign.pk, provider, ONE_BY_ONE)

    entries = listener.entries()
    assert kinds(entries) == ["campaign", "rows", "rows", "campaign"]
    # It should render no template and put no HTML, name or error in the stream.
    assert rendered_templates == []
    for entry in entries:
        assert set(entry.fields) == ENTRY_FIELDS[entry.kind], entry
        assert not any("<" in value or "mailbox" in value for value in entry.fields.values())
    # The list does record renders: the header, which stream views render, is in it.
    broadcasts.render_header(campaign)
    assert rendered_templates[0] == "campaigns/_header.html"


def test_auto_pause_announces_campaign(
    make_campaign: MakeCampaign, listen: Listen, settings
) -> None:
    settings.AUTO_PAUSE_FAILURE_COUNT = 1
    emails = ["a@fail.example.com", "b@fail.example.com"]
    campaign = make_campaign(recipients=[{"email": email} for email in emails])
    campaign.start()
    first, _second = recipient_ids(campaign)
    listener = listen(campaign)
    provider = RecordingProvider(permanent=dict.fromkeys(emails, "rejected"))

    run_campaign(campaign.pk, provider, ONE_BY_ONE)

    entries = without_claims(listener.entries())
    # The failure, the pause that it caused, and the loop's last word as it
    # leaves the campaign paused.
    assert kinds(entries) == ["rows", "campaign", "campaign"]
    assert entries[0].recipient_ids == [first]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


class BlockingProvider(RecordingProvider):
    """Holds the first delivery until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def deliver(self, delivery: Delivery) -> str:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(THREAD_TIMEOUT_SECONDS), "the test never released"
        return super().deliver(delivery)


@pytest.mark.django_db(transaction=True)
def test_pause_announces_released_claims(
    make_campaign: MakeCampaign, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    campaign = make_campaign()
    campaign.start()
    delivered, *waiting = recipient_ids(campaign)
    listener = listen(campaign)
    provider = BlockingProvider()
    # One delivery at a time from one claim of every recipient, so two claims
    # wait while the first delivery is held.
    one_at_a_time = engine_settings(concurrency=1, batch_size=10, flush_size=1)

    def run_loop() -> None:
        try:
            run_campaign(campaign.pk, provider, one_at_a_time)
        finally:
            connection.close()

    def loop_saw_pause() -> bool:
        return any("this worker stops claiming" in r.getMessage() for r in caplog.records)

    loop = threading.Thread(target=run_loop)
    with caplog.at_level(logging.INFO, logger="dispatch.engine"):
        loop.start()
        assert provider.started.wait(THREAD_TIMEOUT_SECONDS), "no delivery started"
        assert campaign.pause("operator")
        deadline = time.monotonic() + THREAD_TIMEOUT_SECONDS
        while not loop_saw_pause():
            assert time.monotonic() < deadline, "the loop did not notice the pause"
            time.sleep(0.05)
        provider.release.set()
    loop.join(timeout=THREAD_TIMEOUT_SECONDS)
    assert not loop.is_alive()

    entries = without_claims(listener.entries())
    # The released claims and the finished delivery, each after its commit,
    # then the loop's last word. The pause itself was made by the test, which
    # announces nothing.
    assert kinds(entries) == ["rows", "rows", "campaign"]
    assert sorted(entries[0].recipient_ids) == waiting
    assert entries[1].recipient_ids == [delivered]
    assert list(campaign.recipients.order_by("id").values_list("status", flat=True)) == [
        "sent",
        "queued",
        "queued",
    ]


def test_sweep_announces_expired_claims(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    campaign.start()
    claims.claim_batch(campaign.pk, 2, lease_seconds=60)
    campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    expired = list(
        campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).values_list("id", flat=True)
    )
    listener = listen(campaign)

    assert sweep().expired == 2

    entries = listener.entries()
    assert kinds(entries) == ["rows"]
    assert sorted(entries[0].recipient_ids) == sorted(expired)


def test_sweep_announces_completion(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    campaign.start()
    campaign.recipients.update(status=Recipient.Status.SENT, processed_at=timezone.now())
    listener = listen(campaign)

    assert sweep().completed == [campaign.pk]

    assert [entry.fields for entry in listener.entries()] == [{"kind": "campaign"}]


def test_dispatch_finishes_when_redis_is_down(
    make_campaign: MakeCampaign, settings, caplog: pytest.LogCaptureFixture
) -> None:
    campaign = make_campaign()
    campaign.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with caplog.at_level("WARNING", logger="live"):
        run_campaign(campaign.pk, RecordingProvider(), ONE_BY_ONE)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert not campaign.recipients.filter(status=Recipient.Status.QUEUED).exists()
    # It should log each update it could not add: three claims, three flushes
    # and the completion.
    lost = [r for r in caplog.records if "live update not published" in r.getMessage()]
    assert len(lost) == 7
    assert all(r.levelname == "WARNING" for r in lost)
    assert all(f"campaign {campaign.pk}:" in r.getMessage() for r in lost)


# Views and helpers


def test_broadcast_recipients_names_their_ids(make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    listener = listen(campaign)
    first, _second, third = campaign.recipients.order_by("id")

    broadcasts.broadcast_recipients(campaign.pk, [third, first])
    broadcasts.broadcast_recipients(campaign.pk, [])

    # It should add one entry for the list, and none for an empty list.
    [entry] = listener.entries()
    assert entry.kind == "rows"
    assert entry.recipient_ids == [third.pk, first.pk]


@pytest.mark.parametrize("request_id", [None, "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41"])
def test_broadcast_refresh_carries_request_id(
    make_campaign: MakeCampaign, listen: Listen, request_id: str | None
) -> None:
    campaign = make_campaign()
    listener = listen(campaign)

    broadcasts.broadcast_refresh(campaign.pk, request_id)

    # An empty request_id stands for none.
    assert [entry.fields for entry in listener.entries()] == [
        {"kind": "refresh", "request_id": request_id or ""}
    ]


def test_stream_is_trimmed_and_expires(
    make_campaign: MakeCampaign, listen: Listen, settings, redis_client
) -> None:
    settings.LIVE_STREAM_MAX_ENTRIES = 10
    settings.LIVE_STREAM_TTL_SECONDS = 120
    campaign = make_campaign()
    listen(campaign)
    key = streams.stream_key(campaign.pk)
    recipient = campaign.recipients.order_by("id")[0]

    node_size = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])

    for _ in range(5 * node_size):
        broadcasts.broadcast_recipients(campaign.pk, [recipient])

    # MAXLEN ~ trims whole nodes of the stream, so it keeps at least the
    # maximum and fewer than the maximum plus one node.
    assert 10 <= redis_client.xlen(key) < 10 + node_size
    assert 0 < redis_client.ttl(key) <= 120


# What the stream views render


def test_render_state_has_header_and_page_rows(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    first, _second, third = campaign.recipients.order_by("id")

    state = feeds.render_state(campaign.pk, frozenset({third.pk, first.pk}))

    # The header, then the page's rows in id order, and no other row.
    assert targets(state) == [f"campaign_{campaign.pk}_header", first.dom_id, third.dom_id]


def test_rendered_row_carries_version_and_commit_time(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    campaign.start()
    recipient = campaign.recipients.order_by("id")[0]
    claims.claim_batch(campaign.pk, 1, lease_seconds=60)
    recipient.refresh_from_db()

    rows = feeds.render_rows(campaign.pk, {recipient.pk: 1767225600.1234})

    [(_, target, html)] = turbo_streams(rows)
    assert target == recipient.dom_id
    assert recipient.version == 1
    assert 'data-status="in_flight" data-version="1"' in html
    assert 'data-committed-at="1767225600.123"' in html


def test_rendered_row_of_other_campaign_is_skipped(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other", recipients=[{"email": "x@example.com"}])
    stranger = other.recipients.get()

    assert feeds.render_rows(campaign.pk, {stranger.pk: None}) == ""


def test_rendered_content_is_escaped(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        name="<img src=x onerror=alert(1)>",
        recipients=[{"name": "<script>alert(1)</script>", "email": "x@example.com"}],
    )
    recipient = campaign.recipients.get()

    state = feeds.render_state(campaign.pk, frozenset({recipient.pk}))

    assert "<script>alert(1)</script>" not in state
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in state
    assert "<img src=x" not in state
    assert "&lt;img src=x onerror=alert(1)&gt;" in state


def test_header_stream_carries_read_version(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    rendered = feeds.render_header_stream(campaign.pk)

    assert rendered is not None
    html, version = rendered
    assert version > 0
    assert f'data-version="{version}"' in html
    assert feeds.render_header_stream(987654321) is None


def test_every_header_stream_morphs(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    header = f"campaign_{campaign.pk}_header"
    rendered = feeds.render_header_stream(campaign.pk)
    assert rendered is not None
    sources = {
        "render_header_stream": rendered[0],
        "render_state": feeds.render_state(campaign.pk, frozenset(recipient_ids(campaign))),
    }

    # It should morph the header, so that a button pressed during an update
    # stays in the page, and replace the rows.
    for source, html in sources.items():
        methods = {target: method for method, target, _ in turbo_streams(html)}
        assert methods.get(header) == "morph", f"{source}: header stream {methods}"
        rows = {target: method for target, method in methods.items() if target != header}
        assert all(method == "" for method in rows.values()), f"{source}: row streams {rows}"


def test_refresh_stream_without_request_id() -> None:
    assert broadcasts.refresh_stream() == '<turbo-stream action="refresh"></turbo-stream>'


def test_refresh_stream_names_request_id() -> None:
    stream = broadcasts.refresh_stream("1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41")

    assert stream == (
        '<turbo-stream action="refresh" request-id="1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41">'
        "</turbo-stream>"
    )


def test_refresh_stream_escapes_request_id() -> None:
    stream = broadcasts.refresh_stream('x"><script>alert(1)</script>')

    assert "<script>" not in stream
    assert 'request-id="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in stream


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"X-Turbo-Request-Id": "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41"},
            "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41",
        ),
        ({"X-Turbo-Request-Id": "request_42"}, "request_42"),
        ({}, None),
        ({"X-Turbo-Request-Id": ""}, None),
        ({"X-Turbo-Request-Id": "two words"}, None),
        ({"X-Turbo-Request-Id": 'x" onclick="alert(1)'}, None),
        ({"X-Turbo-Request-Id": "a" * 65}, None),
    ],
    ids=["uuid", "token", "missing", "empty", "space", "quote", "too-long"],
)
def test_turbo_request_id_from_header(headers: dict[str, str], expected: str | None) -> None:
    request = RequestFactory().post("/campaigns/1/cancel", headers=headers)

    assert broadcasts.turbo_request_id(request) == expected
