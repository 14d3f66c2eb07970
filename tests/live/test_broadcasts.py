"""What the dispatch job publishes on a campaign's live-update channel."""

from __future__ import annotations

import re
import socket

import pytest
from django.test import RequestFactory

from campaigns.models import Campaign, Recipient
from dispatch.engine import run_campaign
from live import broadcasts
from live.tasks import broadcast_campaign_task
from tests.dispatch.fakes import engine_settings

pytestmark = pytest.mark.django_db

# One recipient per claim and per flush, so each outcome is its own message.
ONE_BY_ONE = engine_settings(
    concurrency=1,
    batch_size=1,
    flush_interval=0.01,
    flush_size=1,
    max_attempts=1,
    retry_wait_seconds=0,
)


def dispatch_campaign(campaign_id: int, provider=None) -> None:
    from dispatch.providers import get_provider

    run_campaign(campaign_id, provider or get_provider(), ONE_BY_ONE)


# A replace stream: the header is morphed into the page, a row is swapped out.
STREAM = re.compile(
    r'<turbo-stream action="replace"(?: method="(morph)")? target="([^"]+)">'
    r"<template>(.*?)</template>",
    re.S,
)


def streams(message: str) -> list[tuple[str, str, str]]:
    """The (method, target, html) of each replace stream in `message`; method is "" or "morph"."""
    return STREAM.findall(message)


def targets(message: str) -> list[str]:
    return [target for _, target, _ in streams(message)]


def rows_in(messages: list[str]) -> dict[str, str]:
    """The last HTML published for each recipient row, by row id."""
    rows: dict[str, str] = {}
    for message in messages:
        for _, target, html in streams(message):
            if target.startswith("recipient_"):
                rows[target] = html
    return rows


def test_start_broadcasts_processing_header(make_campaign, listen, job_queue):
    from dispatch.tasks import start_campaign

    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)

    assert start_campaign(campaign.pk)

    messages = listener.messages()
    assert [targets(m) for m in messages] == [[f"campaign_{campaign.pk}_header"]]
    assert 'data-campaign-status="processing"' in messages[0]
    # It should wake the configured number of worker loops.
    assert len(job_queue()) == 4


def test_loop_broadcasts_every_outcome(make_campaign, listen, settings):
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)
    recipient_ids = list(campaign.recipients.order_by("id").values_list("id", flat=True))

    dispatch_campaign(campaign.pk)

    messages = listener.messages()
    header = f"campaign_{campaign.pk}_header"
    # It should publish each row with the header, one message per flush, then
    # the completed header.
    assert [targets(m) for m in messages[:-1]] == [
        [f"recipient_{pk}", header] for pk in recipient_ids
    ]
    assert targets(messages[-1]) == [header]
    assert 'data-campaign-status="completed"' in messages[-1]
    assert set(rows_in(messages)) == {f"recipient_{pk}" for pk in recipient_ids}


def test_header_updates_are_throttled(make_campaign, listen, settings):
    settings.LIVE_HEADER_INTERVAL_SECONDS = 3600
    campaign = make_campaign()
    campaign.start()
    listener = listen(campaign)

    dispatch_campaign(campaign.pk)

    messages = listener.messages()
    header = f"campaign_{campaign.pk}_header"
    headers = [m for m in messages if header in targets(m)]
    # At most one header from the outcomes, plus the completion, which always comes.
    assert len(headers) <= 2
    assert 'data-campaign-status="completed"' in headers[-1]
    assert len(rows_in(messages)) == 3


def test_row_broadcast_shows_new_status(make_campaign, listen, settings):
    settings.DELIVERY_FAIL_EMAIL_DOMAIN = "fail.example.com"
    campaign = make_campaign(recipients=[{"email": "x@fail.example.com"}])
    campaign.start()
    listener = listen(campaign)
    recipient = campaign.recipients.get()

    dispatch_campaign(campaign.pk)

    row_html = rows_in(listener.messages())[f"recipient_{recipient.pk}"]
    assert 'data-status="failed"' in row_html
    assert "mailbox unavailable" in row_html


def test_header_broadcast_counts_progress(make_campaign, listen, settings):
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0
    campaign = make_campaign(recipients=[{"email": "a@example.com"}, {"email": "b@example.com"}])
    campaign.start()
    listener = listen(campaign)

    dispatch_campaign(campaign.pk)

    messages = listener.messages()
    first_row_header = streams(messages[0])[1][2]
    assert '<dd data-count="sent" class="text-emerald-700">1</dd>' in first_row_header
    assert 'value="1" max="2"' in first_row_header
    assert "50%" in first_row_header
    final_header = streams(messages[-1])[0][2]
    assert "100%" in final_header
    # The Dispatch button is gone once the campaign is no longer pending.
    assert "/dispatch" not in final_header


def test_broadcast_escapes_user_content(make_campaign, listen):
    campaign = make_campaign(
        name="<img src=x onerror=alert(1)>",
        recipients=[{"name": "<script>alert(1)</script>", "email": "x@example.com"}],
    )
    listener = listen(campaign)
    recipient = campaign.recipients.get()

    broadcasts.broadcast_recipient(recipient)

    message = listener.messages()[0]
    assert "<script>alert(1)</script>" not in message
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message
    assert "<img src=x" not in message
    assert "&lt;img src=x onerror=alert(1)&gt;" in message


def test_snapshot_has_header_and_every_row(make_campaign):
    campaign = make_campaign()

    snapshot = broadcasts.snapshot(campaign)

    expected = [f"campaign_{campaign.pk}_header"] + [
        f"recipient_{pk}" for pk in campaign.recipients.order_by("id").values_list("id", flat=True)
    ]
    assert targets(snapshot) == expected


def test_every_header_stream_morphs(make_campaign, listen, settings):
    settings.LIVE_HEADER_INTERVAL_SECONDS = 0
    campaign = make_campaign()
    recipient = campaign.recipients.order_by("id").first()
    listener = listen(campaign)
    header = f"campaign_{campaign.pk}_header"

    broadcasts.broadcast_campaign(campaign)
    broadcasts.broadcast_refresh(campaign)
    broadcasts.broadcast_recipients(campaign.pk, [recipient])
    published = listener.messages()
    assert len(published) == 3
    sources = {
        "broadcast_campaign": published[0],
        "broadcast_refresh": published[1],
        "broadcast_recipients": published[2],
        "snapshot": broadcasts.snapshot(campaign),
    }

    # It should morph the header, so that a button pressed during an update
    # stays in the page, and replace the rows.
    for source, message in sources.items():
        methods = {target: method for method, target, _ in streams(message)}
        assert methods.get(header) == "morph", f"{source}: header stream {methods}"
        rows = {target: method for target, method in methods.items() if target != header}
        assert all(method == "" for method in rows.values()), f"{source}: row streams {rows}"


def test_refresh_stream_without_request_id():
    assert broadcasts.refresh_stream() == '<turbo-stream action="refresh"></turbo-stream>'


def test_refresh_stream_names_request_id():
    stream = broadcasts.refresh_stream("1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41")

    assert stream == (
        '<turbo-stream action="refresh" request-id="1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41">'
        "</turbo-stream>"
    )


def test_refresh_stream_escapes_request_id():
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
def test_turbo_request_id_from_header(headers, expected):
    request = RequestFactory().post("/campaigns/1/cancel", headers=headers)

    assert broadcasts.turbo_request_id(request) == expected


@pytest.mark.parametrize("request_id", [None, "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41"])
def test_refresh_task_publishes_request_id(make_campaign, listen, request_id):
    campaign = make_campaign()
    listener = listen(campaign)

    broadcast_campaign_task(campaign.pk, refresh=True, request_id=request_id)

    [message] = listener.messages()
    assert targets(message) == [f"campaign_{campaign.pk}_header"]
    assert message.endswith(broadcasts.refresh_stream(request_id))
    assert ("request-id=" in message) == (request_id is not None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dispatch_finishes_when_redis_is_down(make_campaign, settings, caplog):
    campaign = make_campaign()
    campaign.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with caplog.at_level("WARNING", logger="live"):
        dispatch_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert not campaign.recipients.filter(status=Recipient.Status.QUEUED).exists()
    assert "live update not published" in caplog.text
