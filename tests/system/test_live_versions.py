"""A late or out-of-order update never makes a row or the header go backwards.

Rows and the header carry data-version, and frontend/versions.js skips a
Turbo Stream whose content is older than the element on the page. Late
content reaches a page for real when two servers relay one campaign, or a
stream event and a refresh cross. The test hands the page old content
itself, as Turbo Streams: the rows and header that the page was first
rendered with, and an event its stream sent in the middle of the dispatch.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign
from tests.system.browser import (
    expect_header,
    expect_no_page_load,
    expect_rows,
    header_on_page,
    mark_window,
    record_stream_activity,
    rows_on_page,
    stream_messages,
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

RECIPIENT_COUNT = 6
UPDATE_TIMEOUT_MS = 15_000

# Renders Turbo Stream HTML on the page as if its stream had sent it.
RENDER_STREAMS = "(html) => window.Turbo.renderStreamMessage(html)"


def replace_stream(target: str, html: str, method: str = "") -> str:
    method_attribute = f' method="{method}"' if method else ""
    return (
        f'<turbo-stream action="replace"{method_attribute} target="{target}">'
        f"<template>{html}</template></turbo-stream>"
    )


def outer_html(page: Page, element_id: str) -> str:
    return str(page.evaluate("(id) => document.getElementById(id).outerHTML", element_id))


def test_stale_updates_never_go_backwards(
    page: Page, delivery_gate: DeliveryGate, make_campaign: Callable[..., Campaign]
) -> None:
    recipients = [
        {"name": f"Reader {n}", "email": f"reader{n}@example.com"}
        for n in range(1, RECIPIENT_COUNT + 1)
    ]
    campaign = make_campaign(name="Versions", recipients=recipients)
    ids = list(campaign.recipients.order_by("id").values_list("id", flat=True))
    header_id = f"{campaign.dom_id}_header"
    record_stream_activity(page)
    page.goto(campaign.get_absolute_url())
    mark_window(page)
    wait_for_stream(page)
    # The rows (queued) and header (pending) as the page was first rendered.
    first_rows = {pk: outer_html(page, f"recipient_{pk}") for pk in ids}
    first_header = outer_html(page, header_id)

    start_dispatch(campaign)
    delivery_gate.allow(RECIPIENT_COUNT // 2)
    wait_for_processed(campaign, RECIPIENT_COUNT // 2)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    # Every event so far, the last of them with the header of the middle
    # of the dispatch.
    events_so_far = stream_messages(page)
    assert any(header_id in event for event in events_so_far)

    delivery_gate.open()
    wait_for_status(campaign, Campaign.Status.COMPLETED)
    final_rows = rows_in_database(campaign)
    expect_header(page, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_rows(page, final_rows, timeout_ms=UPDATE_TIMEOUT_MS)

    rows_before = rows_on_page(page, ids)
    header_before = header_on_page(page, campaign)
    assert rows_before == final_rows

    stale = [replace_stream(f"recipient_{pk}", html) for pk, html in first_rows.items()]
    stale.append(replace_stream(header_id, first_header, method="morph"))
    stale.extend(events_so_far)
    # Content of the current version applies. Streams render in order, so
    # once this marked copy of a row shows, the page has judged every
    # stale stream before it.
    probe_id = f"recipient_{ids[0]}"
    probe = outer_html(page, probe_id).replace("<tr ", "<tr data-probe ", 1)
    page.evaluate(RENDER_STREAMS, "".join(stale) + replace_stream(probe_id, probe))
    expect(page.locator(f"#{probe_id}[data-probe]")).to_have_count(1)

    # It should keep every row and the header as they were.
    assert rows_on_page(page, ids) == rows_before
    assert header_on_page(page, campaign) == header_before
    expect_no_page_load(page)
