"""A campaign page ends showing the truth after its stream is cut or connects late.

The page never loads again: the browser's EventSource reconnects by itself
and names the last event id it received, and the stream sends what the
page missed (or, when the campaign's Redis stream no longer contains that id,
the current header and rows). A page's first connection starts at the
stream position that the page was rendered at.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import redis
from django.db import connection
from playwright.sync_api import Page, Route

from campaigns.models import Campaign, Recipient
from live import streams
from tests.servers import RestartableAppServer
from tests.system.browser import (
    expect_header,
    expect_no_page_load,
    expect_rows,
    mark_window,
    record_stream_activity,
    stream_opens,
    wait_for_stream,
)
from tests.system.delivery import (
    DeliveryGate,
    rows_in_database,
    start_dispatch,
    wait_for_processed,
    wait_for_status,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

RECIPIENT_COUNT = 30
FINAL_STATUSES = {Recipient.Status.SENT, Recipient.Status.FAILED, Recipient.Status.CANCELLED}

# Milliseconds for changes to reach a page, a reconnect included: the
# browser waits 2 s before it reconnects (the stream's `retry` field), then
# a stream event (0.1 s) and a header (0.2 s), with a wide margin.
UPDATE_TIMEOUT_MS = 20_000

STREAM_IS_OPEN = """() => document.querySelector("turbo-stream-source")
                          ?.streamSource?.readyState === EventSource.OPEN"""


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    # Every tenth recipient's address fails, so the counts differ by status.
    rows = [
        {
            "name": f"Reader {n:02d}",
            "email": f"reader{n:02d}@{'fail.example.com' if n % 10 == 0 else 'example.com'}",
        }
        for n in range(1, RECIPIENT_COUNT + 1)
    ]
    return make_campaign(name="Reconnects", recipients=rows)


def final_rows(campaign: Campaign) -> dict[int, tuple[str, int]]:
    """Status and version of the recipients whose outcome is final, by id."""
    return {pk: row for pk, row in rows_in_database(campaign).items() if row[0] in FINAL_STATUSES}


@pytest.mark.parametrize("stream_kept", [True, False], ids=["replay", "stream-lost"])
def test_page_converges_after_server_restart(
    page: Page,
    delivery_gate: DeliveryGate,
    restartable_app_server: RestartableAppServer,
    redis_client: redis.Redis,
    campaign: Campaign,
    stream_kept: bool,
) -> None:
    server = restartable_app_server
    record_stream_activity(page)
    page.goto(server.base_url + campaign.get_absolute_url())
    mark_window(page)
    wait_for_stream(page)

    start_dispatch(campaign)
    delivery_gate.allow(10)
    wait_for_processed(campaign, 10)
    expect_rows(page, final_rows(campaign), timeout_ms=UPDATE_TIMEOUT_MS)

    # The stream is cut in the middle of the dispatch, and ten more
    # recipients are processed while no server runs.
    server.stop()
    page.wait_for_function(f"() => !({STREAM_IS_OPEN})()", timeout=UPDATE_TIMEOUT_MS)
    delivery_gate.allow(10)
    wait_for_processed(campaign, 20)
    if not stream_kept:
        # As after the stream's expiry or a Redis restart: the position that
        # the browser names on reconnect is unknown.
        assert redis_client.delete(streams.stream_key(campaign.pk)) == 1
    server.start()

    # It should reconnect by itself and show what happened while it was cut.
    page.wait_for_function("() => window.__stream.opens >= 2", timeout=UPDATE_TIMEOUT_MS)
    expect_rows(page, final_rows(campaign), timeout_ms=UPDATE_TIMEOUT_MS)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)

    # It should go on live after the reconnect and end with the final state.
    delivery_gate.open()
    wait_for_status(campaign, Campaign.Status.COMPLETED)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(page, rows_in_database(campaign), timeout_ms=UPDATE_TIMEOUT_MS)
    expect_no_page_load(page)
    assert stream_opens(page) == 2


def test_page_opened_mid_dispatch_ends_correct(
    page: Page, delivery_gate: DeliveryGate, campaign: Campaign
) -> None:
    start_dispatch(campaign)
    delivery_gate.allow(10)
    wait_for_processed(campaign, 10)

    def process_more_before_connecting(route: Route) -> None:
        # The page was rendered with ten outcomes; ten more commit before
        # its stream connects.
        try:
            delivery_gate.allow(10)
            wait_for_processed(campaign, 20)
        finally:
            # Playwright runs the handler in its own greenlet, where Django
            # opens a separate connection, which would keep the test
            # database from being dropped at the end of the run.
            connection.close()
        route.continue_()

    page.route(re.compile(rf"/campaigns/{campaign.pk}/stream\?"), process_more_before_connecting)
    response = page.goto(campaign.get_absolute_url())
    assert response is not None
    mark_window(page)

    # The page rendered the middle of the dispatch.
    rendered = re.findall(r'<tr id="recipient_\d+" data-status="(\w+)"', response.text())
    assert len(rendered) == RECIPIENT_COUNT
    assert sum(status in FINAL_STATUSES for status in rendered) == 10

    # It should show the outcomes committed between the render and the connection.
    wait_for_stream(page, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(page, final_rows(campaign), timeout_ms=UPDATE_TIMEOUT_MS)

    # It should go on live and end with the final state.
    delivery_gate.open()
    wait_for_status(campaign, Campaign.Status.COMPLETED)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(page, rows_in_database(campaign), timeout_ms=UPDATE_TIMEOUT_MS)
    expect_no_page_load(page)
