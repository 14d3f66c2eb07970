"""Several viewers of one campaign, each shown its own page of recipients, follow it live.

Every viewer ends with what the database contains: the campaign's final status
and counts in the header, and the final status and version of every row on
its page. A viewer's stream carries only the rows of its own page.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page
from pytest_playwright.pytest_playwright import CreateContextCallback

from campaigns.models import Campaign
from tests.system.browser import (
    expect_header,
    expect_no_page_load,
    expect_rows,
    mark_window,
    record_stream_activity,
    stream_targets,
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

# The campaign page lists this many recipients (campaigns.views.RECIPIENTS_PER_PAGE).
PAGE_SIZE = 50

# Milliseconds for the last changes to reach a page: a flush of the worker
# loop (0.2 s), a stream event (0.1 s) and a header (0.2 s), with a wide
# margin for a busy machine.
UPDATE_TIMEOUT_MS = 15_000


def recipients(count: int, failing_every: int = 0) -> list[dict[str, str]]:
    """Recipient rows; every `failing_every`-th one has an address that always fails."""
    rows = []
    for n in range(1, count + 1):
        domain = "fail.example.com" if failing_every and n % failing_every == 0 else "example.com"
        rows.append({"name": f"Reader {n:03d}", "email": f"reader{n:03d}@{domain}"})
    return rows


def open_viewer(viewer: Page, campaign: Campaign, page_number: int = 1) -> None:
    record_stream_activity(viewer)
    viewer.goto(f"{campaign.get_absolute_url()}?page={page_number}")
    mark_window(viewer)
    wait_for_stream(viewer)


def test_two_viewers_see_campaign_complete(
    page: Page,
    new_context: CreateContextCallback,
    delivery_gate: DeliveryGate,
    make_campaign: Callable[..., Campaign],
) -> None:
    campaign = make_campaign(name="Two viewers", recipients=recipients(40, failing_every=10))
    # Two operators, each with a browser session of their own.
    viewers = [page, new_context().new_page()]
    for viewer in viewers:
        open_viewer(viewer, campaign)

    start_dispatch(campaign)
    delivery_gate.allow(20)
    wait_for_processed(campaign, 20)

    # It should show both viewers the middle of the dispatch.
    for viewer in viewers:
        expect_header(viewer, campaign, timeout_ms=UPDATE_TIMEOUT_MS)

    delivery_gate.open()
    wait_for_status(campaign, Campaign.Status.COMPLETED)

    # It should show both the final counts and every row's final status.
    expected_rows = rows_in_database(campaign)
    assert {status for status, _version in expected_rows.values()} == {"sent", "failed"}
    for viewer in viewers:
        expect_header(viewer, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
        expect_rows(viewer, expected_rows, timeout_ms=UPDATE_TIMEOUT_MS)
        expect_no_page_load(viewer)


def test_viewer_gets_only_its_own_page_rows(
    page: Page,
    new_context: CreateContextCallback,
    delivery_gate: DeliveryGate,
    make_campaign: Callable[..., Campaign],
) -> None:
    campaign = make_campaign(name="Three pages", recipients=recipients(3 * PAGE_SIZE - 30))
    ids = list(campaign.recipients.order_by("id").values_list("id", flat=True))
    pages = {1: ids[:PAGE_SIZE], 2: ids[PAGE_SIZE : 2 * PAGE_SIZE], 3: ids[2 * PAGE_SIZE :]}
    first_page_viewer = new_context().new_page()
    open_viewer(page, campaign, page_number=2)
    open_viewer(first_page_viewer, campaign, page_number=1)

    start_dispatch(campaign)
    delivery_gate.open()
    wait_for_status(campaign, Campaign.Status.COMPLETED)

    # It should end with every row of page 2 final, and the final header.
    expected_rows = rows_in_database(campaign)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(page, {pk: expected_rows[pk] for pk in pages[2]}, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_no_page_load(page)

    # The first page's viewer got its rows too, so page 1's updates were on
    # the campaign's stream while the second page's viewer was connected.
    expect_header(first_page_viewer, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(
        first_page_viewer,
        {pk: expected_rows[pk] for pk in pages[1]},
        timeout_ms=UPDATE_TIMEOUT_MS,
    )

    # It should have rendered Turbo Streams for the rows of its own page only.
    header_id = f"{campaign.dom_id}_header"
    dom_ids = {number: {f"recipient_{pk}" for pk in pks} for number, pks in pages.items()}
    for viewer, own, others in ((page, 2, (1, 3)), (first_page_viewer, 1, (2, 3))):
        targets = set(stream_targets(viewer))
        assert header_id in targets
        assert targets & dom_ids[own], f"page {own} got no row updates"
        unexpected = targets - {header_id} - dom_ids[own]
        assert not unexpected, f"page {own} got updates for {sorted(unexpected)}"
        for other in others:
            assert not targets & dom_ids[other], f"page {own} got rows of page {other}"
